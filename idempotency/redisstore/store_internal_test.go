package redisstore

import (
	"testing"
	"time"
)

func TestRoundUp(t *testing.T) {
	for _, tc := range []struct{ in, want time.Duration }{
		{time.Nanosecond, time.Millisecond},
		{time.Millisecond, time.Millisecond},
		{time.Millisecond + time.Nanosecond, 2 * time.Millisecond},
		{1500 * time.Microsecond, 2 * time.Millisecond},
		{time.Minute, time.Minute},
	} {
		if got := roundUp(tc.in); got != tc.want {
			t.Errorf("roundUp(%v) = %v; want %v", tc.in, got, tc.want)
		}
	}
}
