package redislimit_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/ratelimit"
	"github.com/bulwark-go/bulwark/ratelimit/redislimit"
)

// Every process that uses the key "notion" on this Redis server shares 3
// calls per second. A call that cannot get its token within MaxWait is
// refused at once.
func Example() {
	client := redis.NewClient(&redis.Options{Addr: os.Getenv("BULWARK_REDIS_ADDR")})
	defer client.Close()

	key := "example:notion:" + rand.Text() // a fresh limit each time the example runs
	shared, err := redislimit.New(client, redislimit.Config{Key: key, Rate: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	l, err := ratelimit.New("notion", ratelimit.Config{Backend: shared, MaxWait: 100 * time.Millisecond})
	if err != nil {
		fmt.Println(err)
		return
	}
	fetch := func(ctx context.Context) (string, error) { return "page", nil }
	ctx := context.Background()

	page, err := ratelimit.Do(ctx, l, fetch)
	fmt.Println(page, err)
	_, err = ratelimit.Do(ctx, l, fetch) // the next token is ~333ms away
	fmt.Println(err, errors.Is(err, ratelimit.ErrLimited))
	fmt.Printf("%+v\n", shared.Stats())
	// Output:
	// page <nil>
	// ratelimit notion: rate limit exceeded true
	// {Allowed:1 Denied:1 Failures:0 Fallbacks:0 FailingOpen:false LastError:<nil>}
}
