package bulkhead_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulkhead"
)

func newBulkhead(t *testing.T, name string, cfg bulkhead.Config) *bulkhead.Bulkhead {
	t.Helper()
	b, err := bulkhead.New(name, cfg)
	require.NoError(t, err)
	return b
}

// service is a slow fake service that measures, inside itself, how many
// calls are in flight, and records the order in which calls arrive.
type service struct {
	hold     time.Duration
	inFlight atomic.Int64
	maxSeen  atomic.Int64
	mu       sync.Mutex
	order    []int
}

func (s *service) call(ctx context.Context, id int) (int, error) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		m := s.maxSeen.Load()
		if n <= m || s.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	s.mu.Lock()
	s.order = append(s.order, id)
	s.mu.Unlock()
	select {
	case <-time.After(s.hold):
		return id, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// TestInFlightNeverExceedsMax: 200 goroutines, arriving one after the
// other, against a slow service behind MaxConcurrent 10 with a queue for
// the rest: the service never sees more than 10 calls at once (and does
// see 10); the queue is FIFO (no caller gets its slot after a caller that
// arrived later); every 7th caller has a deadline of 120ms, and those
// still queued then leave the queue, their slots going to the next in
// line; no slot leaks.
func TestInFlightNeverExceedsMax(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const callers, hold = 200, 50 * time.Millisecond
		b := newBulkhead(t, "svc", bulkhead.Config{MaxConcurrent: 10, MaxWaiting: callers})
		var (
			inFlight, maxSeen atomic.Int64
			entered           [callers]time.Time
			errs              [callers]error
			wg                sync.WaitGroup
		)
		service := func(id int) (int, error) {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for m := maxSeen.Load(); n > m && !maxSeen.CompareAndSwap(m, n); m = maxSeen.Load() {
			}
			entered[id] = time.Now()
			time.Sleep(hold) // slow, and deaf to the context
			return id, nil
		}
		start := time.Now()
		for id := range callers {
			ctx, cancel := t.Context(), context.CancelFunc(func() {})
			if id%7 == 0 {
				ctx, cancel = context.WithDeadline(t.Context(), start.Add(120*time.Millisecond))
			}
			wg.Go(func() {
				defer cancel()
				_, errs[id] = bulkhead.Do(ctx, b, func(context.Context) (int, error) { return service(id) })
			})
			synctest.Wait() // id is running or queued before id+1 arrives
		}
		wg.Wait()

		assert.Equal(t, int64(10), maxSeen.Load(), "most calls the service saw at once")
		var left, served []int
		for id, err := range errs {
			if err != nil {
				assert.ErrorIs(t, err, context.DeadlineExceeded, "caller %d", id)
				left = append(left, id)
				continue
			}
			served = append(served, id)
		}
		// Callers 0-29 got slots before 120ms; the deadlined ones after
		// that (35, 42, ..., 196) were still queued and left.
		var wantLeft []int
		for id := 35; id < callers; id += 7 {
			wantLeft = append(wantLeft, id)
		}
		assert.Equal(t, wantLeft, left)
		for i := 1; i < len(served); i++ {
			a, z := served[i-1], served[i]
			assert.False(t, entered[z].Before(entered[a]), "caller %d got its slot before caller %d, who arrived earlier", z, a)
		}
		// 176 served, 10 at a time, 50ms each: the last batch starts at 850ms.
		assert.Equal(t, 17*hold, entered[served[len(served)-1]].Sub(start))
		st := b.Stats()
		assert.Equal(t, bulkhead.Stats{MaxConcurrent: 10, MaxWaiting: callers,
			Admitted: int64(len(served)), Queued: callers - 10, Canceled: int64(len(left))}, st)
	})
}

// TestInFlightUnderRealScheduling is the same without synctest: real
// goroutines, real preemption, the race detector watching the fast path.
func TestInFlightUnderRealScheduling(t *testing.T) {
	b := newBulkhead(t, "svc", bulkhead.Config{MaxConcurrent: 10, MaxWaiting: 200})
	var inFlight, maxSeen atomic.Int64
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			for range 50 {
				release, err := b.Acquire(context.Background())
				if !assert.NoError(t, err) {
					return
				}
				n := inFlight.Add(1)
				for m := maxSeen.Load(); n > m && !maxSeen.CompareAndSwap(m, n); m = maxSeen.Load() {
				}
				time.Sleep(time.Microsecond)
				inFlight.Add(-1)
				release()
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, maxSeen.Load(), int64(10))
	st := b.Stats()
	assert.Equal(t, int64(200*50), st.Admitted)
	assert.Zero(t, st.InFlight)
	assert.Zero(t, st.Waiting)
}

// queueUp starts n calls, one at a time and each queued before the next
// starts, that each take a slot of b and record their turn in got. It
// returns their cancel functions and errors (read after done is waited).
func queueUp(t *testing.T, b *bulkhead.Bulkhead, n int, got *[]int, mu *sync.Mutex, wg *sync.WaitGroup) ([]context.CancelFunc, []error) {
	cancels := make([]context.CancelFunc, n)
	errs := make([]error, n)
	for i := range n {
		ctx, cancel := context.WithCancel(t.Context())
		cancels[i] = cancel
		wg.Go(func() {
			_, errs[i] = bulkhead.Do(ctx, b, func(context.Context) (int, error) {
				mu.Lock()
				*got = append(*got, i)
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
				return i, nil
			})
		})
		synctest.Wait() // i is in the queue before i+1 arrives
	}
	return cancels, errs
}

// TestQueueIsFIFO: callers that wait get their slots in arrival order,
// and callers whose context ends leave the queue without taking a slot.
func TestQueueIsFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// One slot, so that the service sees the calls in the order they
		// were granted.
		b := newBulkhead(t, "svc", bulkhead.Config{MaxConcurrent: 1, MaxWaiting: 50})
		hold := make(chan struct{})
		var holders sync.WaitGroup
		for range 1 {
			release, err := b.Acquire(t.Context())
			require.NoError(t, err)
			holders.Go(func() { <-hold; release() })
		}
		var (
			got []int
			mu  sync.Mutex
			wg  sync.WaitGroup
		)
		cancels, errs := queueUp(t, b, 20, &got, &mu, &wg)
		assert.Equal(t, 20, b.Stats().Waiting)

		// Callers 3, 7 and 19 give up while queued: they leave at once.
		for _, i := range []int{3, 7, 19} {
			cancels[i]()
		}
		synctest.Wait()
		st := b.Stats()
		assert.Equal(t, 17, st.Waiting)
		assert.Equal(t, int64(3), st.Canceled)
		assert.Equal(t, 1, st.InFlight)

		close(hold)
		holders.Wait()
		wg.Wait()
		var want []int
		for i := range 20 {
			if i != 3 && i != 7 && i != 19 {
				want = append(want, i)
				assert.NoError(t, errs[i], "caller %d", i)
			} else {
				assert.ErrorIs(t, errs[i], context.Canceled, "caller %d", i)
			}
		}
		assert.Equal(t, want, got, "the order the service saw")
		st = b.Stats()
		assert.Zero(t, st.InFlight)
		assert.Zero(t, st.Waiting)
		for _, c := range cancels {
			c()
		}
	})
}

// TestGrantedAsContextEnds: a waiter granted a slot at the moment its
// context ends either takes the slot or gives it back; no slot leaks
// either way (run many times: the select picks at random).
func TestGrantedAsContextEnds(t *testing.T) {
	outcomes := map[bool]int{}
	for range 200 {
		synctest.Test(t, func(t *testing.T) {
			b := newBulkhead(t, "svc", bulkhead.Config{MaxConcurrent: 1, MaxWaiting: 1})
			release, err := b.Acquire(t.Context())
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(t.Context())
			var (
				got    func()
				gotErr error
				done   = make(chan struct{})
			)
			go func() {
				defer close(done)
				got, gotErr = b.Acquire(ctx)
			}()
			synctest.Wait()
			release() // hands the slot to the waiter...
			cancel()  // ...whose context ends before it runs
			<-done
			if gotErr == nil {
				assert.Equal(t, 1, b.Stats().InFlight)
				got()
			} else {
				assert.ErrorIs(t, gotErr, context.Canceled)
			}
			outcomes[gotErr == nil]++
			st := b.Stats()
			assert.Zero(t, st.InFlight, "slots held at the end")
			assert.Zero(t, st.Waiting)
			// The slot is usable.
			r, err := b.Acquire(t.Context())
			require.NoError(t, err)
			r()
		})
	}
	t.Logf("took the slot %d times, gave it back %d times", outcomes[true], outcomes[false])
}

// TestFullRejectsAtOnce: without a queue, a call that finds every slot
// taken is refused at once with a rejection naming the bulkhead, an event
// and a report mark.
func TestFullRejectsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var events []bulwark.Event
		b := newBulkhead(t, "notion", bulkhead.Config{MaxConcurrent: 1, OnEvent: func(e bulwark.Event) { events = append(events, e) }})
		release, err := b.Acquire(t.Context())
		require.NoError(t, err)
		defer release()

		start := time.Now()
		ctx, rep := bulwark.WithReport(t.Context())
		ran := false
		_, err = bulkhead.Do(ctx, b, func(context.Context) (int, error) { ran = true; return 1, nil })
		assert.False(t, ran)
		assert.Equal(t, start, time.Now(), "refused without waiting")
		assert.ErrorIs(t, err, bulkhead.ErrFull)
		assert.ErrorIs(t, err, bulwark.ErrRejected)
		assert.EqualError(t, err, "bulkhead notion: full")
		assert.True(t, rep.Rejected())
		require.Len(t, events, 1)
		assert.Equal(t, bulwark.BulkheadRejected, events[0].Kind)
		assert.Equal(t, "bulkhead:rejected", events[0].Kind.String())
		assert.Equal(t, "notion", events[0].Executor)
		assert.Equal(t, err, events[0].Err)
		assert.Zero(t, events[0].Duration)
		assert.Equal(t, int64(1), b.Stats().Rejected)
	})
}

// TestQueueFullRejectsAtOnce: MaxWaiting bounds the queue.
func TestQueueFullRejectsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, "svc", bulkhead.Config{MaxConcurrent: 1, MaxWaiting: 2})
		release, err := b.Acquire(t.Context())
		require.NoError(t, err)
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				r, err := b.Acquire(t.Context())
				if assert.NoError(t, err) {
					r()
				}
			})
		}
		synctest.Wait()
		assert.Equal(t, 2, b.Stats().Waiting)
		_, err = b.Acquire(t.Context())
		assert.ErrorIs(t, err, bulkhead.ErrFull)
		release()
		wg.Wait()
		assert.Equal(t, bulkhead.Stats{MaxConcurrent: 1, MaxWaiting: 2, Admitted: 3, Queued: 2, Rejected: 1}, b.Stats())
	})
}

// TestMaxWait: a queued call leaves the queue when MaxWait passes, refused
// after exactly MaxWait; MaxInt64 waits until a slot frees.
func TestMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var events []bulwark.Event
		b := newBulkhead(t, "svc", bulkhead.Config{MaxConcurrent: 1, MaxWaiting: 5, MaxWait: 300 * time.Millisecond,
			OnEvent: func(e bulwark.Event) { events = append(events, e) }})
		release, err := b.Acquire(t.Context())
		require.NoError(t, err)
		start := time.Now()
		_, err = b.Acquire(t.Context())
		assert.ErrorIs(t, err, bulkhead.ErrFull)
		assert.Equal(t, 300*time.Millisecond, time.Since(start))
		require.Len(t, events, 1)
		assert.Equal(t, 300*time.Millisecond, events[0].Duration)
		assert.Zero(t, b.Stats().Waiting)
		release()
	})
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, "svc", bulkhead.Config{MaxConcurrent: 1, MaxWaiting: 5, MaxWait: math.MaxInt64})
		release, err := b.Acquire(t.Context())
		require.NoError(t, err)
		time.AfterFunc(time.Hour, release)
		start := time.Now()
		r, err := b.Acquire(t.Context())
		require.NoError(t, err)
		assert.Equal(t, time.Hour, time.Since(start))
		r()
	})
}

// TestDeadlines: a call whose context is already done, or whose deadline
// is sooner than its turn is predicted to come, is refused at once; a
// queued call whose deadline passes leaves with the context's error.
func TestDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, "svc", bulkhead.Config{MaxConcurrent: 1, MaxWaiting: 100})
		svc := &service{hold: 100 * time.Millisecond}
		var wg sync.WaitGroup
		call := func() {
			wg.Go(func() {
				_, err := bulkhead.Do(t.Context(), b, func(ctx context.Context) (int, error) { return svc.call(ctx, 0) })
				assert.NoError(t, err)
			})
		}
		for range 10 {
			call()
		}
		synctest.Wait()

		// A done context with the bulkhead full: its cause, at once.
		done, cancel := context.WithCancelCause(t.Context())
		cause := errors.New("caller gave up")
		cancel(cause)
		start := time.Now()
		_, err := b.Acquire(done)
		assert.Equal(t, cause, err)

		// No estimate yet: a short deadline waits, then leaves with
		// DeadlineExceeded.
		short, cancelShort := context.WithTimeout(t.Context(), 50*time.Millisecond)
		_, err = b.Acquire(short)
		cancelShort()
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 50*time.Millisecond, time.Since(start))

		// After a few hand-offs the queue drains one slot per 100ms; with
		// 7 waiting, a call with 500ms left would be served after ~800ms.
		time.Sleep(300 * time.Millisecond)
		synctest.Wait()
		require.Equal(t, 6, b.Stats().Waiting)
		call()
		synctest.Wait()
		require.Equal(t, 7, b.Stats().Waiting)
		rejectedBefore := b.Stats().Rejected
		start = time.Now()
		ctx, cancel2 := context.WithTimeout(t.Context(), 500*time.Millisecond)
		_, err = b.Acquire(ctx)
		cancel2()
		assert.ErrorIs(t, err, bulkhead.ErrFull)
		assert.Equal(t, start, time.Now(), "refused at once")
		assert.Equal(t, rejectedBefore+1, b.Stats().Rejected)

		// With 2s left it queues and is served.
		ctx, cancel3 := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel3()
		r, err := b.Acquire(ctx)
		require.NoError(t, err)
		assert.Equal(t, 750*time.Millisecond, time.Since(start), "7 ahead, the running call half done")
		r()
		wg.Wait()
		assert.Equal(t, int64(1), svc.maxSeen.Load())
	})
}

// TestPanicReleasesSlot: a panic in fn gives the slot back and reaches
// the caller unchanged.
func TestPanicReleasesSlot(t *testing.T) {
	b := newBulkhead(t, "svc", bulkhead.Config{MaxConcurrent: 1})
	assert.PanicsWithValue(t, "boom", func() {
		_, _ = bulkhead.Do(context.Background(), b, func(context.Context) (int, error) { panic("boom") })
	})
	assert.Zero(t, b.Stats().InFlight)
	v, err := bulkhead.Do(context.Background(), b, func(context.Context) (int, error) { return 7, nil })
	assert.NoError(t, err)
	assert.Equal(t, 7, v)
}

// TestReleaseTooOften: releasing more slots than were acquired panics and
// leaves the counts intact.
func TestReleaseTooOften(t *testing.T) {
	b := newBulkhead(t, "svc", bulkhead.Config{MaxConcurrent: 2})
	release, err := b.Acquire(context.Background())
	require.NoError(t, err)
	release()
	assert.PanicsWithValue(t, "bulkhead svc: release called more often than Acquire succeeded", release)
	st := b.Stats()
	assert.Zero(t, st.InFlight)
	assert.Zero(t, st.Waiting)
	for range 2 {
		_, err := b.Acquire(context.Background())
		assert.NoError(t, err)
	}
	_, err = b.Acquire(context.Background())
	assert.ErrorIs(t, err, bulkhead.ErrFull, "still two slots, no more")
}

// TestInvalidInput: nil bulkhead, context, function or next are errors
// wrapping ErrInvalid, and change nothing.
func TestInvalidInput(t *testing.T) {
	b := newBulkhead(t, "svc", bulkhead.Config{MaxConcurrent: 1})
	fn := func(context.Context) (int, error) { return 1, nil }
	var nilCtx context.Context

	_, err := b.Acquire(nilCtx)
	assert.ErrorIs(t, err, bulkhead.ErrInvalid)
	assert.ErrorContains(t, err, "context: nil")
	var nilB *bulkhead.Bulkhead
	_, err = nilB.Acquire(context.Background())
	assert.ErrorIs(t, err, bulkhead.ErrInvalid)
	_, err = bulkhead.Do[int](context.Background(), b, nil)
	assert.ErrorIs(t, err, bulkhead.ErrInvalid)
	_, err = bulkhead.Do(nilCtx, b, fn)
	assert.ErrorIs(t, err, bulkhead.ErrInvalid)
	_, err = bulkhead.Do(context.Background(), nil, fn)
	assert.ErrorIs(t, err, bulkhead.ErrInvalid)
	_, err = bulkhead.Middleware[int](b)(nil)(context.Background())
	assert.ErrorIs(t, err, bulkhead.ErrInvalid)
	_, err = bulkhead.Middleware[int](nil)(fn)(context.Background())
	assert.ErrorIs(t, err, bulkhead.ErrInvalid)
	assert.Equal(t, bulkhead.Stats{MaxConcurrent: 1}, b.Stats(), "no state changed")
	assert.Equal(t, bulkhead.Stats{}, nilB.Stats())
	assert.Empty(t, nilB.Name())

	v, err := bulkhead.Middleware[int](b)(fn)(context.Background())
	assert.NoError(t, err)
	assert.Equal(t, 1, v)
}

// TestConfig: defaults, and every invalid field named.
func TestConfig(t *testing.T) {
	b := newBulkhead(t, "", bulkhead.Config{})
	assert.Equal(t, bulkhead.DefaultMaxConcurrent, b.Stats().MaxConcurrent)
	for range bulkhead.DefaultMaxConcurrent {
		_, err := b.Acquire(context.Background())
		require.NoError(t, err)
	}
	_, err := b.Acquire(context.Background())
	assert.Equal(t, bulkhead.ErrFull, err, "an unnamed bulkhead returns the sentinel")
	assert.EqualError(t, err, "bulkhead: full")

	for _, c := range []struct {
		cfg   bulkhead.Config
		field string
	}{
		{bulkhead.Config{MaxConcurrent: -1}, "MaxConcurrent"},
		{bulkhead.Config{MaxConcurrent: math.MaxInt32 + 1}, "MaxConcurrent"},
		{bulkhead.Config{MaxWaiting: -1}, "MaxWaiting"},
		{bulkhead.Config{MaxWaiting: math.MaxInt64}, "MaxWaiting"},
		{bulkhead.Config{MaxWait: -time.Second}, "MaxWait"},
	} {
		_, err := bulkhead.New("svc", c.cfg)
		assert.ErrorIs(t, err, bulkhead.ErrInvalid, c.field)
		assert.ErrorContains(t, err, "Config."+c.field, c.field)
		assert.ErrorContains(t, err, `bulkhead "svc"`)
	}
	_, err = bulkhead.New("svc", bulkhead.Config{MaxConcurrent: math.MaxInt32, MaxWaiting: math.MaxInt32})
	assert.NoError(t, err)
}

// TestAcquireReleaseAllocatesNothing: the uncontended path allocates
// nothing.
func TestAcquireReleaseAllocatesNothing(t *testing.T) {
	b := newBulkhead(t, "svc", bulkhead.Config{})
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 1, nil }
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		release, _ := b.Acquire(ctx)
		release()
	}))
	assert.Zero(t, testing.AllocsPerRun(1000, func() { _, _ = bulkhead.Do(ctx, b, fn) }))
	full := newBulkhead(t, "svc", bulkhead.Config{MaxConcurrent: 1})
	_, _ = full.Acquire(ctx)
	assert.Zero(t, testing.AllocsPerRun(1000, func() { _, _ = full.Acquire(ctx) }), "rejection")
}

// TestListenerPanic: a panicking listener reaches the refused caller and
// leaves the bulkhead as it was (no slot taken, nobody queued).
func TestListenerPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, "svc", bulkhead.Config{MaxConcurrent: 1, MaxWaiting: 1, MaxWait: time.Second,
			OnEvent: func(bulwark.Event) { panic("listener") }})
		release, err := b.Acquire(t.Context())
		require.NoError(t, err)
		// Refused after MaxWait in the queue.
		assert.PanicsWithValue(t, "listener", func() { _, _ = b.Acquire(t.Context()) })
		st := b.Stats()
		assert.Equal(t, 1, st.InFlight)
		assert.Zero(t, st.Waiting)
		release()
		r, err := b.Acquire(t.Context())
		require.NoError(t, err, "the bulkhead still works")
		r()
		assert.Zero(t, b.Stats().InFlight)
	})
}
