// Package sat is saturating arithmetic on times and durations, shared by
// every layer of bulwark: a sum or product that would overflow int64
// nanoseconds clamps to the largest (or smallest) representable value
// instead of wrapping around. math.MaxInt64 as a duration therefore means
// "as long as possible" everywhere (DESIGN.md, "Durations saturate").
package sat

import (
	"math"
	"time"
)

// Forever is the largest duration: about 292 years.
const Forever = time.Duration(math.MaxInt64)

// Add returns a+b, clamped to [math.MinInt64, math.MaxInt64].
func Add(a, b time.Duration) time.Duration {
	s := a + b
	switch {
	case a > 0 && b > 0 && s < 0:
		return Forever
	case a < 0 && b < 0 && s >= 0:
		return time.Duration(math.MinInt64)
	}
	return s
}

// Mul returns d*f rounded toward zero, clamped to the int64 range. A NaN
// product is 0.
func Mul(d time.Duration, f float64) time.Duration {
	p := float64(d) * f
	switch {
	case math.IsNaN(p):
		return 0
	case p >= math.MaxInt64:
		return Forever
	case p <= math.MinInt64:
		return time.Duration(math.MinInt64)
	}
	return time.Duration(p)
}

// MulInt returns d*n clamped to the int64 range.
func MulInt(d time.Duration, n int64) time.Duration {
	if d == 0 || n == 0 {
		return 0
	}
	p := d * time.Duration(n)
	if p/time.Duration(n) != d || (n == -1 && d == math.MinInt64) {
		if (d > 0) == (n > 0) {
			return Forever
		}
		return time.Duration(math.MinInt64)
	}
	return p
}

// AddNanos returns base+d for nanosecond counts such as "nanoseconds since
// an epoch", clamped to the int64 range.
func AddNanos(base int64, d time.Duration) int64 { return int64(Add(time.Duration(base), d)) }

// Millis returns d in whole milliseconds, rounded up so that a positive
// duration never becomes 0 or negative; clamped to the int64 range (which
// a duration in milliseconds cannot leave, but a rounding up could).
func Millis(d time.Duration) int64 {
	if d <= 0 {
		return int64(d / time.Millisecond)
	}
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond != 0 {
		ms++
	}
	return ms
}

// Seconds returns d in whole seconds, rounded up for a positive d.
func Seconds(d time.Duration) int64 {
	if d <= 0 {
		return int64(d / time.Second)
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

// FromSeconds returns n seconds as a Duration, clamped to Forever (and to
// the smallest Duration for negative n).
func FromSeconds(n int64) time.Duration { return MulInt(time.Second, n) }
