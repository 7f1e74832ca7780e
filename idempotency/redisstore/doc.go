// Package redisstore is an idempotency.Store kept in Redis, so that
// Managers in several processes run each operation at most once per key
// between them.
//
//	store, err := redisstore.Dial(ctx, "localhost:6379", redisstore.Config{})
//	if err != nil {
//		return err
//	}
//	defer store.Close()
//	m, err := idempotency.New(store, idempotency.Config{})
//	receipt, err := idempotency.Do(ctx, m, key, charge)
//
// Use [New] to share a client you already have (a single server, a
// failover setup, a cluster). Every operation is one Lua script that Redis
// runs atomically on the key's record: claims hold a key with a lease and
// an owner token; only the owner extends, completes or releases its claim;
// completed records expire through Redis's own TTL. Leases therefore run
// on the Redis server's clock, not on the clocks of the processes.
// Results are encoded with a [Codec], JSON by default. The store is an
// idempotency.BatchExtender: a Manager renews the leases of all its
// running calls with one [Store.ExtendMany] per round.
//
// If Redis cannot be reached, claims fail and the Manager fails closed:
// the operation does not run and the caller gets an error wrapping
// idempotency.ErrStore. A result write that fails is retried by the
// Manager while its claim's lease holds; a result that still cannot be
// recorded is returned with an error wrapping idempotency.ErrNotRecorded.
// Close the store when done with it (it may hold a renewal connection). The package passes
// the contract suite of idempotency/storetest against a real Redis
// server. It lives in a module of its own, so that the core bulwark
// module does not depend on go-redis.
package redisstore
