// Package idempotency makes an operation run at most once per key: the
// first call executes it and stores its result, and duplicates get the
// stored result back instead of running it again.
package idempotency
