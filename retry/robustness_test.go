package retry_test

import (
	"context"
	"errors"
	"math"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/retry"
)

const forever = time.Duration(math.MaxInt64)

// maxBackoffInterval mirrors the package's cap on the intervals it hands
// to backoff/v4: 2^61 ns.
const maxBackoffInterval = time.Duration(1 << 61)

// Every duration field of Config set to math.MaxInt64: either New refuses
// it with an error naming the field, or the waits saturate; a wait never
// wraps around to a negative (that is, immediate) retry.
func TestDurationFieldsAtMaxInt64(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  retry.Config
		// newErr, if set, is what New's error must mention.
		newErr string
		// err is the operation's error; deadline, if set, bounds ctx.
		err      error
		deadline time.Duration
		// wantReason, wantAttempts and wantWait describe the *Error.
		wantReason   error
		wantAttempts int
		wantWait     func(t *testing.T, wait time.Duration)
	}{
		{
			name:   "InitialInterval alone is above the default MaxInterval",
			cfg:    retry.Config{InitialInterval: forever},
			newErr: "MaxInterval is 0, meaning 1m0s, below InitialInterval",
		},
		{
			name:         "InitialInterval and MaxInterval, with jitter",
			cfg:          retry.Config{InitialInterval: forever, MaxInterval: forever},
			err:          errBoom,
			deadline:     1000 * time.Hour,
			wantReason:   retry.ErrDeadline,
			wantAttempts: 1,
			wantWait: func(t *testing.T, wait time.Duration) {
				assert.GreaterOrEqual(t, wait, maxBackoffInterval/2, "jitter is ±50% of the saturated interval")
			},
		},
		{
			name:         "InitialInterval and MaxInterval, no jitter",
			cfg:          retry.Config{InitialInterval: forever, MaxInterval: forever, NoJitter: true},
			err:          errBoom,
			deadline:     1000 * time.Hour,
			wantReason:   retry.ErrDeadline,
			wantAttempts: 1,
			wantWait: func(t *testing.T, wait time.Duration) {
				assert.Equal(t, maxBackoffInterval, wait)
			},
		},
		{
			name:         "MaxInterval with a growth past it, with jitter",
			cfg:          retry.Config{InitialInterval: time.Second, Multiplier: 1e12, MaxInterval: forever, MaxAttempts: 10},
			err:          errBoom,
			deadline:     1000 * time.Hour,
			wantReason:   retry.ErrDeadline,
			wantAttempts: 2,
			wantWait: func(t *testing.T, wait time.Duration) {
				assert.GreaterOrEqual(t, wait, maxBackoffInterval/2)
			},
		},
		{
			name:         "MaxInterval with a growth past it, no jitter",
			cfg:          retry.Config{InitialInterval: time.Second, Multiplier: math.MaxFloat64, MaxInterval: forever, MaxAttempts: 10, NoJitter: true},
			err:          errBoom,
			deadline:     1000 * time.Hour,
			wantReason:   retry.ErrDeadline,
			wantAttempts: 2,
			wantWait: func(t *testing.T, wait time.Duration) {
				assert.Equal(t, maxBackoffInterval, wait)
			},
		},
		{
			name:         "MaxElapsedTime",
			cfg:          retry.Config{MaxElapsedTime: forever},
			err:          errBoom,
			wantReason:   retry.ErrExhausted,
			wantAttempts: retry.DefaultMaxAttempts,
		},
		{
			name:         "MaxElapsedTime with long waits",
			cfg:          retry.Config{MaxElapsedTime: forever},
			err:          retry.After(errBoom, 4*time.Minute),
			wantReason:   retry.ErrExhausted,
			wantAttempts: retry.DefaultMaxAttempts,
		},
		{
			name:         "MaxRetryAfter with a wait of MaxInt64 and a deadline",
			cfg:          retry.Config{MaxRetryAfter: forever},
			err:          retry.After(errBoom, forever),
			deadline:     time.Hour,
			wantReason:   retry.ErrDeadline,
			wantAttempts: 1,
			wantWait:     func(t *testing.T, wait time.Duration) { assert.Equal(t, forever, wait) },
		},
		{
			name:         "MaxRetryAfter with a finite MaxElapsedTime",
			cfg:          retry.Config{MaxRetryAfter: forever, MaxElapsedTime: time.Hour},
			err:          retry.After(errBoom, forever),
			wantReason:   retry.ErrMaxElapsedTime,
			wantAttempts: 1,
			wantWait:     func(t *testing.T, wait time.Duration) { assert.Equal(t, forever, wait) },
		},
		{
			name:         "After(err, MaxInt64) with the default MaxRetryAfter",
			cfg:          retry.Config{},
			err:          retry.After(errBoom, forever),
			wantReason:   retry.ErrRetryAfterTooLong,
			wantAttempts: 1,
			wantWait:     func(t *testing.T, wait time.Duration) { assert.Equal(t, forever, wait) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r, err := retry.New(tc.cfg)
				if tc.newErr != "" {
					require.Error(t, err)
					assert.ErrorIs(t, err, retry.ErrInvalidConfig)
					assert.ErrorIs(t, err, retry.ErrInvalid)
					assert.ErrorContains(t, err, tc.newErr)
					return
				}
				require.NoError(t, err)
				ctx := context.Background()
				if tc.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.deadline)
					defer cancel()
				}
				// Jitter is random: repeat so that a wrap-around in half
				// of the draws cannot go unseen.
				for range 16 {
					s := always(tc.err)
					start := time.Now()
					_, err = retry.Do(ctx, r, s.fn)

					var re *retry.Error
					require.ErrorAs(t, err, &re)
					assert.ErrorIs(t, err, tc.wantReason)
					assert.ErrorIs(t, err, errBoom)
					assert.Equal(t, tc.wantAttempts, re.Attempts)
					assert.Len(t, s.starts, tc.wantAttempts)
					for _, w := range s.waits() {
						assert.Positive(t, w, "no wait wrapped around to a negative")
					}
					if tc.wantWait != nil {
						tc.wantWait(t, re.Wait)
						assert.Less(t, time.Since(start), time.Hour, "a refused wait is not slept")
					}
				}
			})
		})
	}
}

// A wait of MaxInt64 that is allowed is bounded by the caller's context:
// it ends when ctx is cancelled, whenever that is.
func TestWaitOfMaxInt64EndsWithTheContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, retry.Config{MaxRetryAfter: forever})
		ctx, cancel := context.WithCancel(context.Background())
		s := always(retry.After(errBoom, forever))
		done := make(chan error)
		start := time.Now()
		go func() {
			_, err := retry.Do(ctx, r, s.fn)
			done <- err
		}()
		time.Sleep(1000 * time.Hour)
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Do returned %v before the context ended", err)
		default:
		}
		cancel()
		err := <-done
		assert.ErrorIs(t, err, context.Canceled)
		assert.Len(t, s.starts, 1)
		assert.Equal(t, 1000*time.Hour, time.Since(start))
	})
}

func TestRetryAfterHeaderBeyondDuration(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		want         func(t *testing.T, wait time.Duration)
	}{
		{"20 digits", "99999999999999999999", func(t *testing.T, w time.Duration) { assert.Equal(t, forever, w) }},
		{"MaxInt64 seconds", "9223372036854775807", func(t *testing.T, w time.Duration) { assert.Equal(t, forever, w) }},
		{"just above a Duration", "9223372037", func(t *testing.T, w time.Duration) { assert.Equal(t, forever, w) }},
		{"far HTTP-date", "Fri, 31 Dec 9999 23:59:59 GMT", func(t *testing.T, w time.Duration) { assert.Equal(t, forever, w) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				resp := &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{"Retry-After": {tc.header}}}
				err := retry.FromResponse(resp)
				var he *retry.HTTPError
				require.ErrorAs(t, err, &he)
				tc.want(t, he.Wait)

				s := always(err)
				_, err = retry.Do(context.Background(), mustNew(t, retry.Config{}), s.fn)
				assert.ErrorIs(t, err, retry.ErrRetryAfterTooLong)
				assert.Len(t, s.starts, 1, "no immediate retry: the wait did not wrap around")
			})
		})
	}
}

// errWithWait is a user error type whose RetryAfter method is a callback.
type errWithWait struct{ wait func() time.Duration }

func (e errWithWait) Error() string             { return "rate limited" }
func (e errWithWait) RetryAfter() time.Duration { return e.wait() }

// A panic in any user callback reaches the caller, and the Retrier works
// normally afterwards.
func TestPanickingCallbacksPropagate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(boom func()) retry.Config
		err  func(boom func()) error
	}{
		{
			name: "IsRetryable",
			cfg: func(boom func()) retry.Config {
				return retry.Config{IsRetryable: func(error) bool { boom(); return true }}
			},
		},
		{
			name: "OnEvent retry:attempt",
			cfg: func(boom func()) retry.Config {
				return retry.Config{OnEvent: func(e bulwark.Event) {
					if e.Kind == bulwark.RetryAttempt && e.Attempt == 2 {
						boom() // after the timer served one wait
					}
				}}
			},
		},
		{
			name: "OnEvent retry:exhausted",
			cfg: func(boom func()) retry.Config {
				return retry.Config{OnEvent: func(e bulwark.Event) {
					if e.Kind == bulwark.RetryExhausted {
						boom()
					}
				}}
			},
		},
		{
			name: "RetryAfter method",
			err: func(boom func()) error {
				return errWithWait{wait: func() time.Duration { boom(); return 0 }}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				armed := true
				boom := func() {
					if armed {
						panic("callback exploded")
					}
				}
				cfg := retry.Config{}
				if tc.cfg != nil {
					cfg = tc.cfg(boom)
				}
				r := mustNew(t, cfg)
				opErr := errBoom
				if tc.err != nil {
					opErr = tc.err(boom)
				}
				assert.PanicsWithValue(t, "callback exploded", func() {
					_, _ = retry.Do(context.Background(), r, always(opErr).fn)
				})

				// The same Retrier serves the next call normally.
				armed = false
				s := failing(2, opErr)
				v, err := retry.Do(context.Background(), r, s.fn)
				require.NoError(t, err)
				assert.Equal(t, 3, v)
			})
		})
	}
}

func TestNilFunctionsWrapErrInvalid(t *testing.T) {
	calls, events := 0, 0
	fn := func(context.Context) (int, error) { calls++; return 1, nil }
	r := mustNew(t, retry.Config{OnEvent: func(bulwark.Event) { events++ }})
	ctx, report := bulwark.WithReport(context.Background())

	for name, call := range map[string]func() (int, error){
		"Do nil Retrier":          func() (int, error) { return retry.Do(ctx, nil, fn) },
		"Do nil Func":             func() (int, error) { return retry.Do[int](ctx, r, nil) },
		"Middleware nil Retrier":  func() (int, error) { return retry.Middleware[int](nil)(fn)(ctx) },
		"Middleware nil next":     func() (int, error) { return retry.Middleware[int](r)(nil)(ctx) },
		"Middleware of zero next": func() (int, error) { var next bulwark.Func[int]; return retry.Middleware[int](r)(next)(ctx) },
	} {
		var (
			v   int
			err error
		)
		require.NotPanics(t, func() { v, err = call() }, name)
		assert.ErrorIs(t, err, retry.ErrInvalid, name)
		assert.Zero(t, v, name)
	}
	assert.Zero(t, calls)
	assert.Zero(t, events, "nothing is announced")
	assert.Zero(t, report.Attempts(), "nothing is counted")

	_, err := retry.New(retry.Config{MaxAttempts: -1})
	assert.ErrorIs(t, err, retry.ErrInvalid, "a Config error is an ErrInvalid too")
	assert.ErrorIs(t, err, retry.ErrInvalidConfig)
	assert.True(t, errors.Is(retry.ErrInvalidConfig, retry.ErrInvalid))
	assert.Equal(t, "retry: invalid config", retry.ErrInvalidConfig.Error())
}
