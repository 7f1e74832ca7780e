// Package idempotency makes an operation run at most once per key: the
// first call executes it and stores its result, and duplicates get the
// stored result back instead of running it again. It is the outermost
// layer of a bulwark stack: a retried HTTP request, a redelivered message
// or a double click reaches the remote service once.
//
// # Keys
//
// [Key] derives a key from any values: the hex SHA-256 of a canonical,
// type-tagged encoding, stable across runs and platforms. Namespace keys
// with their first parts, such as the executor and the operation:
//
//	key, err := idempotency.Key("payments", "charge", req.OrderID)
//
// The same function makes payload fingerprints: [DoPayload] refuses a key
// reused with another payload ([ErrKeyReuse]) instead of replaying a
// result that belongs to a different request.
//
// # Running an operation
//
// A [Manager] runs operations over a [Store]. [Do] and [Execute] take the
// key per call; [Middleware] takes it from the call's context (see
// [WithKey]), for use in a bulwark.Chain or the pipeline package:
//
//	m, err := idempotency.New(nil, idempotency.Config{}) // in-memory store
//	receipt, err := idempotency.Do(ctx, m, key, charge)
//
// The first call claims the key with a lease, runs the operation, and
// stores its result for Config.TTL. A duplicate in the same process waits
// for the running call and shares its result; a duplicate in another
// process gets [ErrInProgress] until the result is stored (or the lease of
// a dead holder runs out). A failed operation releases its claim, so a
// retry runs it again, unless Config.CacheErrors stores permanent errors.
// Store failures are never silent: at the claim the operation does not
// run ([ErrStore]); after it, the caller gets the value together with
// [ErrNotRecorded]. [Execute] reports whether a result was replayed, and
// so does the bulwark.Report of the call's context.
//
// # Stores
//
// [MemoryStore] keeps records in this process: bounded, expiring, and
// free of serialization. A store shared by several processes implements
// the same [Store] interface (claim with a lease, extend, complete,
// release, get; each atomic) and passes the contract suite in package
// idempotency/storetest. A shared store encodes values and hands them back
// with a decoder ([Record.Decode]); the Manager decodes them into the
// caller's result type, so one Manager serves every result type with
// either kind of store.
package idempotency
