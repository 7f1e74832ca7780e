package breaker

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
)

func TestEventsCarryDurationAndError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		b := newBreakerT(t, Config{OnEvent: rec.listen})
		Do(context.Background(), b, func(context.Context) (int, error) {
			time.Sleep(300 * time.Millisecond)
			return 1, nil
		})
		Do(context.Background(), b, func(context.Context) (int, error) {
			time.Sleep(time.Second)
			return 0, errBoom
		})
		events := rec.all()
		require.Len(t, events, 2)
		assert.Equal(t, bulwark.RequestSuccess, events[0].Kind)
		assert.Equal(t, 300*time.Millisecond, events[0].Duration)
		assert.NoError(t, events[0].Err)
		assert.Equal(t, bulwark.RequestFailure, events[1].Kind)
		assert.Equal(t, time.Second, events[1].Duration)
		assert.ErrorIs(t, events[1].Err, errBoom)
		assert.Equal(t, time.Now(), events[1].Time)
		for _, e := range events {
			assert.Empty(t, e.From)
			assert.Nil(t, e.Detail)
		}
	})
}

func TestTooManyProbesEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		b := newBreakerT(t, Config{FailureThreshold: 1, HalfOpenMaxCalls: 1, OnEvent: rec.listen})
		openBreaker(t, b)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		release := make(chan struct{})
		go Do(context.Background(), b, func(context.Context) (int, error) { <-release; return 0, nil })
		synctest.Wait()
		rec.reset()
		_, err := call(b, nil)
		require.ErrorIs(t, err, ErrTooManyProbes)
		events := rec.all()
		require.Len(t, events, 1)
		assert.Equal(t, bulwark.RequestRejected, events[0].Kind)
		assert.ErrorIs(t, events[0].Err, ErrTooManyProbes)
		close(release)
		synctest.Wait()
	})
}

func TestLoggerLogsStateChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			},
		}))
		b, err := New("payments", Config{FailureThreshold: 2, SuccessThreshold: 1, Logger: logger})
		require.NoError(t, err)
		fail(b)
		assert.Empty(t, buf.String(), "calls are not logged, only state changes")
		fail(b)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		ok(b)
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		require.Len(t, lines, 3)
		assert.Contains(t, lines[0], `level=WARN msg="circuit breaker opened" executor=payments from=CLOSED to=OPEN failures=2 consecutive_failures=2`)
		assert.Contains(t, lines[0], "next_attempt=")
		assert.Contains(t, lines[1], `level=INFO msg="circuit breaker state changed" executor=payments from=OPEN to=HALF_OPEN`)
		assert.Contains(t, lines[2], `level=INFO msg="circuit breaker state changed" executor=payments from=HALF_OPEN to=CLOSED`)
		assert.Contains(t, lines[2], "successes=1")
	})
}

func TestNoListenerNoEvents(t *testing.T) {
	// Without a listener nothing is built: the fast paths do not allocate
	// (TestFastPathsDoNotAllocate), and a state change builds no Stats.
	b := newBreakerT(t, Config{FailureThreshold: 1, RequestTimeout: -1})
	allocs := testing.AllocsPerRun(100, func() {
		b.ForceOpen()
		b.Reset()
	})
	assert.Zero(t, allocs)
}
