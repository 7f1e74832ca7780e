// Package bench compares bulwark with the libraries Go programs most often
// use for the same jobs: github.com/sony/gobreaker/v2 (circuit breaker),
// github.com/failsafe-go/failsafe-go (breaker, retry, fallback and timeout
// policies) and github.com/cenkalti/backoff/v4 (retry).
//
// It holds only benchmarks and the test that runs each of them once. Every
// benchmark does the same work in each library, named lib=bulwark,
// lib=gobreaker, lib=failsafe or lib=backoff, and checks the result of every
// call, so that no library is measured doing less than another. The
// benchmarks live in a module of their own so that the core module never
// depends on the libraries it is compared with.
//
// Run them with `make bench-compare` at the repository root; the method and
// the latest table are in docs/performance.md.
package bench
