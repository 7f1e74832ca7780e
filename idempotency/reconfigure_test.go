package idempotency_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/idempotency"
)

// uncomparableStore is a Store of a type that cannot be compared.
type uncomparableStore struct {
	idempotency.Store
	_ []int
}

// A Manager made by Reconfigure over the same store, with the same lease,
// shares the calls in flight: a duplicate on it waits for a call running
// on the old one. Another store or lease gives a Manager of its own, whose
// duplicate meets the running call in the store only (ErrInProgress).
func TestReconfigureSharesFlights(t *testing.T) {
	mem, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
	require.NoError(t, err)
	other, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		store  idempotency.Store
		cfg    idempotency.Config
		shared bool
	}{
		"same store":              {store: mem, cfg: idempotency.Config{TTL: time.Hour}, shared: true},
		"nil store means m's":     {store: nil, cfg: idempotency.Config{CacheErrors: true}, shared: true},
		"default lease spelt out": {store: mem, cfg: idempotency.Config{Lease: idempotency.DefaultLease}, shared: true},
		"another lease":           {store: mem, cfg: idempotency.Config{Lease: time.Hour}},
		"another store":           {store: other},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := newManager(t, mem, idempotency.Config{})
				n, err := m.Reconfigure(tc.store, tc.cfg)
				require.NoError(t, err)
				key := "k/" + name
				started, release := make(chan struct{}), make(chan struct{})
				first := make(chan idempotency.Result[int], 1)
				go func() {
					first <- idempotency.Execute(t.Context(), m, key, "", func(context.Context) (int, error) {
						close(started)
						<-release
						return 1, nil
					})
				}()
				<-started
				go func() {
					time.Sleep(time.Second)
					close(release)
				}()
				r := idempotency.Execute(t.Context(), n, key, "", func(context.Context) (int, error) { return 2, nil })
				switch {
				case tc.shared:
					require.NoError(t, r.Err)
					assert.Equal(t, 1, r.Value)
					assert.True(t, r.Replayed)
				case tc.store == mem:
					assert.ErrorIs(t, r.Err, idempotency.ErrInProgress)
				default:
					require.NoError(t, r.Err)
					assert.Equal(t, 2, r.Value, "a Manager over another store knows nothing of the call")
				}
				assert.Equal(t, 1, (<-first).Value)
			})
		})
	}
}

func TestReconfigureNilAndInvalid(t *testing.T) {
	var m *idempotency.Manager
	n, err := m.Reconfigure(nil, idempotency.Config{})
	require.NoError(t, err, "a nil Manager makes a new one")
	require.NotNil(t, n)

	_, err = n.Reconfigure(nil, idempotency.Config{TTL: -1})
	require.ErrorIs(t, err, idempotency.ErrInvalid)
	assert.ErrorContains(t, err, "TTL")

	// A store whose type cannot be compared is never the same store.
	mem, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
	require.NoError(t, err)
	u := uncomparableStore{Store: mem}
	a := newManager(t, u, idempotency.Config{})
	assert.NotPanics(t, func() { _, err = a.Reconfigure(uncomparableStore{Store: mem}, idempotency.Config{}) })
	require.NoError(t, err)
}
