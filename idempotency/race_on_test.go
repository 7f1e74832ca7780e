//go:build race

package idempotency_test

// raceEnabled reports whether the tests run under the race detector, which
// slows the churn tests about tenfold: they run a tenth of their
// operations then.
const raceEnabled = true
