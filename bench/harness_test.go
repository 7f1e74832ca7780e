package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// impl is one library's way of doing the work of a row.
//
// build makes what the library needs (a breaker, a policy, an executor) and
// returns the operation to measure. The operation performs one call and
// returns an error if the call's value, error or side effects are not the
// ones the row expects, so a library that skipped part of the work would
// fail the row instead of looking fast. An operation of a row marked
// parallel must be safe for concurrent use.
type impl struct {
	lib   string
	build func(tb testing.TB) func(ctx context.Context) error
}

// row is one line of the comparison: the same work in every library.
type row struct {
	name     string // the benchmark's name, without "Benchmark"
	parallel bool   // measured with RunParallel: the operation is shared
	impls    []impl
}

// bench runs r's operation once per iteration in every library, as the
// sub-benchmarks lib=NAME, so that benchstat -col /lib puts the libraries
// side by side. The context is a cancellable one, like an HTTP request's.
func bench(b *testing.B, r row) {
	for _, im := range r.impls {
		b.Run("lib="+im.lib, func(b *testing.B) {
			op := im.build(b)
			ctx := b.Context()
			b.ReportAllocs()
			if !r.parallel {
				for b.Loop() {
					if err := op(ctx); err != nil {
						b.Fatal(err)
					}
				}
				return
			}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := op(ctx); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// rows lists every row, for TestRows.
var rows = []row{
	breakerClosed, breakerClosedParallel,
	breakerClosedNoCapture, breakerClosedMiddleware,
	breakerOpen, breakerOpenParallel,
	retryFirstTry, retryFailTwice,
	retryBreaker, retryBreakerFailTwice,
	stack, stackParallel, stackOpenFallback,
	httpGet, httpGetParallel,
}

// TestRows runs the operation of every benchmark a few times (from two
// goroutines at once for the parallel rows), so that `make test` checks,
// under the race detector, that each library does the row's work and
// passes the row's checks.
func TestRows(t *testing.T) {
	for _, r := range rows {
		for _, im := range r.impls {
			t.Run(r.name+"/lib="+im.lib, func(t *testing.T) {
				op := im.build(t)
				ctx := t.Context()
				goroutines := 1
				if r.parallel {
					goroutines = 2
				}
				var wg sync.WaitGroup
				for range goroutines {
					wg.Go(func() {
						for range 10 {
							if err := op(ctx); err != nil {
								t.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
			})
		}
	}
}

// The remote call every library guards. The value 1 stands for a good
// answer; the checks compare against it.

const good = 1

var errDown = errors.New("service down")

// up is a service that answers the good value. Like the function a call
// site passes (which captures its client and the request's arguments), the
// functions the benchmarks pass capture state: bulwark's Do forms get the
// method value u.call, the peers, whose functions take no context, a
// closure calling u.call(ctx). The middleware chains are built once, over
// u.call.
type up struct{ v int }

func newUp() *up { return &up{v: good} }

func (u *up) call(context.Context) (int, error) { return u.v, nil }

// checkOK is the check of a call that must return the good value.
func checkOK(v int, err error) error {
	if err != nil || v != good {
		return fmt.Errorf("got (%d, %v), want (%d, nil)", v, err, good)
	}
	return nil
}

// flaky fails twice, then succeeds, then fails twice again, and so on: each
// operation of a retry row needs exactly three attempts. It is not safe for
// concurrent use.
type flaky struct{ n int }

func (f *flaky) call(context.Context) (int, error) {
	f.n++
	if f.n%3 != 0 {
		return 0, errDown
	}
	return good, nil
}

// check verifies one operation's result and that it took three attempts
// (from attempts before to f.n after).
func (f *flaky) check(before, v int, err error) error {
	if err := checkOK(v, err); err != nil {
		return err
	}
	if got := f.n - before; got != 3 {
		return fmt.Errorf("%d attempts, want 3", got)
	}
	return nil
}

// The configuration every library is given, in its own terms.
const (
	failureThreshold = 5                // consecutive failures that open a circuit
	successThreshold = 2                // probes that close it again
	resetTimeout     = 30 * time.Second // OPEN → HALF_OPEN
	longReset        = time.Hour        // for the open rows: no probe during a run
	requestTimeout   = 10 * time.Second // the stack's per-call deadline
	maxAttempts      = 3                // retry: the first call included
	fallbackKey      = "dashboard"      // the stack's cache key
	maxAge           = 5 * time.Minute  // the oldest value a fallback serves
)
