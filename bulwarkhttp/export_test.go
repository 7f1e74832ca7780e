package bulwarkhttp_test

import (
	"context"

	"github.com/bulwark-go/bulwark/retry"
)

// isPermanent reports whether retry refuses err at once: retry.Do of a
// function failing with err makes one attempt.
func isPermanent(err error) bool {
	r, _ := retry.New(retry.Config{NoWait: true})
	n := 0
	_, _ = retry.Do(context.Background(), r, func(context.Context) (int, error) { n++; return 0, err })
	return n == 1
}
