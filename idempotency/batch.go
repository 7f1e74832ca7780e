package idempotency

import (
	"context"
	"time"
)

// ClaimRef names one claim: its key and the owner token that holds it, as
// given to [Store.Claim].
type ClaimRef struct {
	// Key is the idempotency key the claim holds.
	Key string
	// Owner is the claim's owner token.
	Owner string
}

// BatchExtender is an optional interface of a [Store]: a store that can
// extend many claims at once (one pipeline or script round trip to a
// server rather than one per claim) implements it, and a Manager then
// renews the leases of all its running calls with one ExtendMany call per
// renewal round. A round then takes about one round trip whatever the
// number of running calls, so that the promise of Config.Lease (a claim is
// lost only if two extensions in a row fail) holds for any number of them.
// The Manager extends the claims of a store without it with concurrent
// Extend calls, at most 64 at a time, each round bounded by the renewal
// period: enough for a few thousand calls at a millisecond a round trip
// and the default lease.
//
// [MemoryStore] and the Redis store (idempotency/redisstore) implement
// it; the package idempotency/storetest checks an implementation.
type BatchExtender interface {
	// ExtendMany does what [Store.Extend] does, for each claim of claims:
	// it pushes back the lease of the owner's in-progress claim on the key
	// to end after lease from now. It reports each claim's outcome in
	// errs, in the order of claims (len(errs) == len(claims)): nil if the
	// claim was extended; an error wrapping [ErrLeaseLost] if the owner
	// holds no live claim on the key; another error if this claim's
	// extension failed or its outcome is unknown (the caller may try
	// again). One claim's failure does not change the others' outcome.
	//
	// err is not nil only if the batch failed as a whole before any claim
	// was extended (lease is not positive, the store is closed); errs is
	// then nil. claims may be empty. ctx bounds the whole batch; a store
	// splits a large batch as it needs to. ExtendMany keeps no reference
	// to claims and must be safe for concurrent use.
	ExtendMany(ctx context.Context, claims []ClaimRef, lease time.Duration) (errs []error, err error)
}
