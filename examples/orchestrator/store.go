package main

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark/idempotency"
)

// forgettingStore is an idempotency.Store that can forget a key, so that a
// step whose effect a rollback undid runs again on the next run instead of
// replaying a result that no longer exists (the ID of a deleted page).
//
// The Store contract has no delete, so it keeps a generation per forgotten
// key and stores the records of generation g under "key/g": forgetting a
// key moves it to a generation with no record. Forget a key only once its
// call has returned (a workflow's compensation runs after the step's call
// completed), never while the call holding it runs.
type forgettingStore struct {
	idempotency.Store // the records

	mu  sync.Mutex
	gen map[string]int
}

func newForgettingStore() (*forgettingStore, error) {
	s, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
	if err != nil {
		return nil, err
	}
	return &forgettingStore{Store: s, gen: map[string]int{}}, nil
}

// Forget makes key unknown: the next call with it runs the operation.
func (s *forgettingStore) Forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen[key]++
}

func (s *forgettingStore) key(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.gen[key]; g > 0 {
		return key + "/" + strconv.Itoa(g)
	}
	return key
}

func (s *forgettingStore) Claim(ctx context.Context, key, owner, fingerprint string, lease time.Duration) (idempotency.Record, bool, error) {
	return s.Store.Claim(ctx, s.key(key), owner, fingerprint, lease)
}

func (s *forgettingStore) Extend(ctx context.Context, key, owner string, lease time.Duration) error {
	return s.Store.Extend(ctx, s.key(key), owner, lease)
}

func (s *forgettingStore) Complete(ctx context.Context, key, owner string, out idempotency.Outcome, ttl time.Duration) error {
	return s.Store.Complete(ctx, s.key(key), owner, out, ttl)
}

func (s *forgettingStore) Release(ctx context.Context, key, owner string) error {
	return s.Store.Release(ctx, s.key(key), owner)
}

func (s *forgettingStore) Get(ctx context.Context, key string) (idempotency.Record, bool, error) {
	return s.Store.Get(ctx, s.key(key))
}
