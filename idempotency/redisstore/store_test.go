package redisstore_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/idempotency/redisstore"
	"github.com/bulwark-go/bulwark/idempotency/storetest"
	"github.com/redis/go-redis/v9"
)

// contractUnit is the storetest unit: leases and TTLs of a few units run
// out on the Redis server's real clock, so it is well above Redis's 1ms
// expiry precision and the duration of a call under the race detector.
const contractUnit = 200 * time.Millisecond

func TestStoreContract(t *testing.T) {
	addr := redisAddr(t)
	// Both protocols: go-redis reads script replies differently in each.
	for _, protocol := range []int{3, 2} {
		t.Run("RESP"+strconv.Itoa(protocol), func(t *testing.T) {
			t.Parallel()
			storetest.RunWith(t, func(t *testing.T) idempotency.Store {
				client := redis.NewClient(&redis.Options{Addr: addr, Protocol: protocol})
				t.Cleanup(func() { _ = client.Close() })
				prefix := testPrefix()
				t.Cleanup(func() { deleteKeys(client, prefix) })
				s, err := redisstore.New(client, redisstore.Config{Prefix: prefix})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}, storetest.Options{Unit: contractUnit})
		})
	}
}

// otherClient is a client of one server that ExtendMany takes for a
// client of several (Redis Cluster, Ring): it extends with pipelines of
// one script per claim, as it must there.
type otherClient struct{ *redis.Client }

// TestStoreContractPipelinedExtends runs the ExtendMany cases of the
// contract over a client that is not a *redis.Client.
func TestStoreContractPipelinedExtends(t *testing.T) {
	addr := redisAddr(t)
	storetest.RunWith(t, func(t *testing.T) idempotency.Store {
		client := newClient(t, addr)
		prefix := testPrefix()
		t.Cleanup(func() { deleteKeys(client, prefix) })
		s, err := redisstore.New(otherClient{client}, redisstore.Config{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, storetest.Options{Unit: contractUnit})
}

func TestNewNilClient(t *testing.T) {
	var typed *redis.Client
	for _, client := range []redis.UniversalClient{nil, typed} {
		if _, err := redisstore.New(client, redisstore.Config{}); err == nil || !strings.Contains(err.Error(), "redisstore: New: nil client") {
			t.Errorf("New(%#v) = %v; want an error about the nil client", client, err)
		}
	}
}

func TestDial(t *testing.T) {
	addr := redisAddr(t)
	ctx := t.Context()
	prefix := testPrefix()
	client := newClient(t, addr)
	t.Cleanup(func() { deleteKeys(client, prefix) })
	for i, a := range []string{addr, "redis://" + addr + "/0"} {
		s, err := redisstore.Dial(ctx, a, redisstore.Config{Prefix: prefix + strconv.Itoa(i)})
		if err != nil {
			t.Fatalf("Dial(%q): %v", a, err)
		}
		if _, claimed, err := s.Claim(ctx, "k", "owner", "", time.Minute); err != nil || !claimed {
			t.Fatalf("Claim through a dialled store: claimed %v, error %v", claimed, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		// Close closed the client Dial made.
		if _, _, err := s.Get(ctx, "k"); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("Get after Close: %v; want an error about the closed client", err)
		}
	}
}

func TestDialFails(t *testing.T) {
	port, err := freePort() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	closed := fmt.Sprintf("127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct{ addr, want string }{
		{closed, "redisstore: Dial " + closed},
		{"redis://user:secret@" + closed, "redisstore: Dial " + closed},
		{"redis://" + closed + "/notadb", "redisstore: Dial: "},
		{"http://" + closed, "redisstore: Dial: "},
	} {
		s, err := redisstore.Dial(ctx, tc.addr, redisstore.Config{})
		if err == nil {
			s.Close()
			t.Fatalf("Dial(%q) succeeded; want an error", tc.addr)
		}
		if !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Dial(%q) = %v; want an error starting %q", tc.addr, err, tc.want)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Dial(%q) = %v: the error shows the password", tc.addr, err)
		}
	}
}

func TestCloseLeavesCallersClientOpen(t *testing.T) {
	s, client := newStore(t, redisAddr(t), redisstore.Config{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := client.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("the caller's client after Store.Close: %v; want it open", err)
	}
}

// TestRecordLayout pins what a record looks like in Redis, which
// docs/idempotency.md describes for operators: a hash under prefix+key
// whose expiry is the lease, then the TTL.
func TestRecordLayout(t *testing.T) {
	addr := redisAddr(t)
	ctx := t.Context()
	prefix := testPrefix()
	s, client := newStore(t, addr, redisstore.Config{Prefix: prefix})

	if _, claimed, err := s.Claim(ctx, "order-1", "owner-a", "fp", time.Minute); err != nil || !claimed {
		t.Fatalf("Claim: claimed %v, error %v", claimed, err)
	}
	got, err := client.HGetAll(ctx, prefix+"order-1").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"state": "in_progress", "owner": "owner-a", "fingerprint": "fp", "gen": "0"}
	if !maps.Equal(got, want) {
		t.Fatalf("claimed record = %v; want %v", got, want)
	}
	if ttl := client.PTTL(ctx, prefix+"order-1").Val(); ttl <= 50*time.Second || ttl > time.Minute {
		t.Fatalf("claimed record expires in %v; want the lease, 1m", ttl)
	}

	if err := s.Complete(ctx, "order-1", "owner-a", idempotency.Outcome{Value: map[string]int{"cents": 4200}}, time.Hour); err != nil {
		t.Fatal(err)
	}
	got = client.HGetAll(ctx, prefix+"order-1").Val()
	want = map[string]string{"state": "completed", "owner": "owner-a", "fingerprint": "fp", "value": `{"cents":4200}`, "type": "map[string]int", "gen": "0"}
	if !maps.Equal(got, want) {
		t.Fatalf("completed record = %v; want %v", got, want)
	}
	if ttl := client.PTTL(ctx, prefix+"order-1").Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("completed record expires in %v; want the TTL, 1h", ttl)
	}

	if _, _, err := s.Claim(ctx, "order-2", "owner-a", "", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, "order-2", "owner-a", idempotency.Outcome{Err: errors.New("card declined")}, time.Hour); err != nil {
		t.Fatal(err)
	}
	got = client.HGetAll(ctx, prefix+"order-2").Val()
	want = map[string]string{"state": "completed", "owner": "owner-a", "fingerprint": "", "error": "card declined", "gen": "0"}
	if !maps.Equal(got, want) {
		t.Fatalf("record of a stored error = %v; want %v", got, want)
	}
}

func TestDefaultPrefix(t *testing.T) {
	client := newClient(t, redisAddr(t))
	s, err := redisstore.New(client, redisstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	key := "default-prefix-test:" + rand.Text()
	t.Cleanup(func() { client.Del(context.Background(), redisstore.DefaultPrefix+key) })
	if _, _, err := s.Claim(t.Context(), key, "owner", "", time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := client.Exists(t.Context(), redisstore.DefaultPrefix+key).Val(); n != 1 {
		t.Fatalf("no record at %q", redisstore.DefaultPrefix+key)
	}
}

func TestInvalidDurations(t *testing.T) {
	addr := redisAddr(t)
	ctx := t.Context()
	prefix := testPrefix()
	s, client := newStore(t, addr, redisstore.Config{Prefix: prefix})
	for _, d := range []time.Duration{0, -time.Second} {
		_, _, err := s.Claim(ctx, "k", "owner", "", d)
		wantErrContaining(t, "Claim with lease "+d.String(), err, "redisstore: Claim: lease must be positive")
		if n := client.Exists(ctx, prefix+"k").Val(); n != 0 {
			t.Fatal("a Claim with an invalid lease created a record")
		}
	}
	if _, _, err := s.Claim(ctx, "k", "owner", "", time.Minute); err != nil {
		t.Fatal(err)
	}
	wantErrContaining(t, "Extend with lease 0", s.Extend(ctx, "k", "owner", 0), "redisstore: Extend: lease must be positive")
	wantErrContaining(t, "Complete with ttl 0", s.Complete(ctx, "k", "owner", idempotency.Outcome{Value: 1}, 0), "redisstore: Complete: ttl must be positive")
	rec, _, err := s.Get(ctx, "k")
	if err != nil || rec.State != idempotency.InProgress {
		t.Fatalf("after invalid calls, the record is %v (%v); want it still in progress", rec.State, err)
	}
}

func TestLeaseLostSaysWhy(t *testing.T) {
	s, _ := newStore(t, redisAddr(t), redisstore.Config{})
	ctx := t.Context()
	if _, _, err := s.Claim(ctx, "k", "owner-a", "", time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"Extend by another owner", s.Extend(ctx, "k", "owner-b", time.Minute), `redisstore: extend "k": idempotency: lease lost: another owner holds the claim`},
		{"Release of a missing key", s.Release(ctx, "missing", "owner-a"), `redisstore: release "missing": idempotency: lease lost: no live claim`},
		{"Complete by the owner", s.Complete(ctx, "k", "owner-a", idempotency.Outcome{Value: 1}, time.Minute), ""},
		{"Complete again", s.Complete(ctx, "k", "owner-a", idempotency.Outcome{Value: 2}, time.Minute), `redisstore: complete "k": idempotency: lease lost: already completed`},
	} {
		if tc.want == "" {
			if tc.err != nil {
				t.Fatalf("%s: %v", tc.name, tc.err)
			}
			continue
		}
		if !errors.Is(tc.err, idempotency.ErrLeaseLost) {
			t.Errorf("%s: %v; want an error wrapping ErrLeaseLost", tc.name, tc.err)
		}
		wantErrContaining(t, tc.name, tc.err, tc.want)
	}
}

// TestExpires checks that a record's Expires is this process's time of
// the call plus what Redis has left of the lease or TTL.
func TestExpires(t *testing.T) {
	s, _ := newStore(t, redisAddr(t), redisstore.Config{})
	ctx := t.Context()
	const lease, ttl = time.Minute, time.Hour

	before := time.Now()
	rec, _, err := s.Claim(ctx, "k", "owner", "", lease)
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	wantBetween(t, "Expires of a new claim", rec.Expires, before.Add(lease), after.Add(lease))

	getStart := time.Now()
	got, _, err := s.Get(ctx, "k")
	getTook := time.Since(getStart)
	if err != nil {
		t.Fatal(err)
	}
	// Redis reports whole milliseconds left, from its clock read during
	// the call and truncated to the millisecond.
	wantBetween(t, "Expires of the claim read back", got.Expires, before.Add(lease-getTook-time.Millisecond), after.Add(lease+time.Millisecond))

	before = time.Now()
	if err := s.Complete(ctx, "k", "owner", idempotency.Outcome{Value: 1}, ttl); err != nil {
		t.Fatal(err)
	}
	after = time.Now()
	getStart = time.Now()
	got, _, err = s.Get(ctx, "k")
	getTook = time.Since(getStart)
	if err != nil {
		t.Fatal(err)
	}
	wantBetween(t, "Expires of the completed record", got.Expires, before.Add(ttl-getTook-time.Millisecond), after.Add(ttl+time.Millisecond))
}

func TestRecordWithoutExpiry(t *testing.T) {
	prefix := testPrefix()
	s, client := newStore(t, redisAddr(t), redisstore.Config{Prefix: prefix})
	ctx := t.Context()
	if _, _, err := s.Claim(ctx, "k", "owner", "", time.Minute); err != nil {
		t.Fatal(err)
	}
	client.Persist(ctx, prefix+"k") // an operator removed the expiry
	rec, found, err := s.Get(ctx, "k")
	if err != nil || !found || rec.State != idempotency.InProgress {
		t.Fatalf("Get = %v, found %v, %v; want the claim", rec.State, found, err)
	}
	if !rec.Expires.IsZero() {
		t.Fatalf("Expires of a record without expiry = %v; want zero", rec.Expires)
	}
}

func TestForeignData(t *testing.T) {
	prefix := testPrefix()
	s, client := newStore(t, redisAddr(t), redisstore.Config{Prefix: prefix})
	ctx := t.Context()
	client.Set(ctx, prefix+"string", "not a record", time.Minute)
	client.HSet(ctx, prefix+"hash", "state", "paused")
	_, _, err := s.Claim(ctx, "string", "owner", "", time.Minute)
	wantErrContaining(t, "Claim over a string key", err, `redisstore: claim "string": WRONGTYPE`)
	_, _, err = s.Get(ctx, "hash")
	wantErrContaining(t, "Get of a hash in an unknown state", err, `redisstore: get "hash": record in unknown state "paused"`)
}

// TestScriptsSurviveFlush: a server that lost its script cache (a restart,
// SCRIPT FLUSH) is sent the scripts again.
func TestScriptsSurviveFlush(t *testing.T) {
	s, client := newStore(t, redisAddr(t), redisstore.Config{})
	ctx := t.Context()
	if _, _, err := s.Claim(ctx, "a", "owner", "", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, claimed, err := s.Claim(ctx, "b", "owner", "", time.Minute); err != nil || !claimed {
		t.Fatalf("Claim after SCRIPT FLUSH: claimed %v, error %v", claimed, err)
	}
	if err := s.Complete(ctx, "b", "owner", idempotency.Outcome{Value: "v"}, time.Minute); err != nil {
		t.Fatalf("Complete after SCRIPT FLUSH: %v", err)
	}
}

func wantErrContaining(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error %v; want one containing %q", what, err, want)
	}
}

func wantBetween(t *testing.T, what string, got, lo, hi time.Time) {
	t.Helper()
	if got.Before(lo) || got.After(hi) {
		t.Errorf("%s = %v; want between %v and %v", what, got.Format(time.StampMicro), lo.Format(time.StampMicro), hi.Format(time.StampMicro))
	}
}
