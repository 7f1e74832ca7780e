package idempotency

import (
	"context"
	"fmt"
	"time"
)

// ExtendMany implements [BatchExtender]: it extends each claim as
// [MemoryStore.Extend] does, taking each shard's lock once per claim. It
// returns an error if lease is not positive.
func (s *MemoryStore) ExtendMany(ctx context.Context, claims []ClaimRef, lease time.Duration) ([]error, error) {
	if lease <= 0 {
		return nil, fmt.Errorf("idempotency: ExtendMany: lease must be positive, got %v", lease)
	}
	errs := make([]error, len(claims))
	for i, c := range claims {
		errs[i] = s.Extend(ctx, c.Key, c.Owner, lease)
	}
	return errs, nil
}
