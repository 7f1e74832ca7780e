package pipeline

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
)

// The breaker's listener follows the subscribers: none without them,
// OnSample (which keeps the breaker's fast path) while only sampled
// subscribers listen, OnEvent while a full one does, or the Logger
// records Debug events. The layers are rebuilt exactly when that choice
// changes: a full subscriber leaving sampled ones behind must take
// OnEvent away (the events alone cannot tell, as the stack filters them).
func TestBreakerListenerFollowsTheSubscribers(t *testing.T) {
	s, err := New(Config{Breaker: &breaker.Config{RequestTimeout: -1}})
	require.NoError(t, err)
	_, err = Do(context.Background(), s, "notion", func(context.Context) (int, error) { return 1, nil })
	require.NoError(t, err)
	e := s.lookup("notion")
	require.NotNil(t, e)
	type wiring struct{ onEvent, onSample bool }
	wired := func() wiring {
		c := e.breakerConfig(e.layers.Load().cfg)
		return wiring{onEvent: c.OnEvent != nil, onSample: c.OnSample != nil}
	}
	layers := e.layers.Load()
	rebuilt := func() bool {
		l := e.layers.Load()
		changed := l != layers
		layers = l
		return changed
	}
	nop := func(bulwark.Event) {}

	assert.Equal(t, wiring{}, wired())
	cancelSampled := s.SubscribeSampled(nop)
	assert.True(t, rebuilt())
	assert.Equal(t, wiring{onSample: true}, wired())
	cancelSampled2 := s.SubscribeSampled(nop)
	assert.False(t, rebuilt(), "a second sampled subscriber changes nothing")
	cancelFull := s.Subscribe(nop)
	assert.True(t, rebuilt())
	assert.Equal(t, wiring{onEvent: true}, wired())
	cancelFull()
	assert.True(t, rebuilt(), "the last full subscriber left: back to OnSample")
	assert.Equal(t, wiring{onSample: true}, wired())
	cancelSampled()
	assert.False(t, rebuilt())
	cancelSampled2()
	assert.True(t, rebuilt())
	assert.Equal(t, wiring{}, wired())

	debug := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
	require.NoError(t, s.Configure("notion", Config{Breaker: &breaker.Config{RequestTimeout: -1}, Logger: debug}))
	defer s.SubscribeSampled(nop)()
	assert.Equal(t, wiring{onEvent: true}, wired(), "the Logger logs every request event at Debug")
}
