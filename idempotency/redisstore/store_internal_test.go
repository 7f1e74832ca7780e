package redisstore

import (
	"math"
	"testing"
	"time"
)

func TestMillis(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want int64
	}{
		{time.Nanosecond, 1},
		{time.Millisecond, 1},
		{time.Millisecond + time.Nanosecond, 2},
		{1500 * time.Microsecond, 2},
		{time.Minute, 60_000},
		// Rounding up used to wrap math.MaxInt64 around to a negative
		// expiry, which deleted the record.
		{math.MaxInt64, 9_223_372_036_855},
		{9_223_372_036_854_000_001, 9_223_372_036_855},
	} {
		if got := millis(tc.in); got != tc.want {
			t.Errorf("millis(%v) = %v; want %v", tc.in, got, tc.want)
		}
	}
}

func TestFromMillis(t *testing.T) {
	for _, tc := range []struct {
		in   int64
		want time.Duration
	}{
		{1, time.Millisecond},
		{60_000, time.Minute},
		// The PTTL of a saturated expiry: one millisecond of it is past
		// math.MaxInt64 nanoseconds.
		{9_223_372_036_855, math.MaxInt64},
		{math.MaxInt64, math.MaxInt64},
	} {
		if got := fromMillis(tc.in); got != tc.want {
			t.Errorf("fromMillis(%v) = %v; want %v", tc.in, got, tc.want)
		}
	}
}
