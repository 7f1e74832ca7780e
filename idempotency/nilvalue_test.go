package idempotency_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/idempotency"
)

// A nil stored by an operation whose result type is an interface replays
// as nil into an interface type, and is ErrDecode for any other type
// (it was replayed as that type's zero value, without an error), on the
// in-memory store as on a serializing one.
func TestNilOfInterfaceReplayedIntoAnotherType(t *testing.T) {
	for name, store := range map[string]idempotency.Store{"memory": nil, "serializing": newJSONStore(time.Now)} {
		t.Run(name, func(t *testing.T) {
			m := newManager(t, store, idempotency.Config{})
			ctx := context.Background()
			_, err := idempotency.Do(ctx, m, "k", func(context.Context) (any, error) { return nil, nil })
			require.NoError(t, err)

			ran := false
			r := idempotency.Execute(ctx, m, "k", "", func(context.Context) (int, error) { ran = true; return 42, nil })
			require.ErrorIs(t, r.Err, idempotency.ErrDecode)
			assert.Zero(t, r.Value)
			assert.False(t, ran)

			e := idempotency.Execute(ctx, m, "k", "", func(context.Context) (error, error) { return errors.New("ran"), nil })
			require.NoError(t, e.Err)
			assert.Nil(t, e.Value)
			assert.True(t, e.Replayed)
		})
	}
}

// A stored permanent error replays into any type: there is no value to
// decode.
func TestStoredErrorReplayedIntoAnyType(t *testing.T) {
	m := newManager(t, nil, idempotency.Config{CacheErrors: true})
	declined := idempotency.Permanent(errors.New("declined"))
	_, err := idempotency.Do(context.Background(), m, "k", func(context.Context) (any, error) { return nil, declined })
	require.ErrorIs(t, err, declined)
	r := idempotency.Execute(context.Background(), m, "k", "", func(context.Context) (int, error) { return 1, nil })
	require.ErrorIs(t, r.Err, declined)
	assert.NotErrorIs(t, r.Err, idempotency.ErrDecode)
	assert.True(t, r.Replayed)
}
