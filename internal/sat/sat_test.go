package sat

import (
	"math"
	"testing"
	"time"
)

func TestAdd(t *testing.T) {
	cases := []struct{ a, b, want time.Duration }{
		{1, 2, 3},
		{Forever, 1, Forever},
		{Forever, Forever, Forever},
		{math.MinInt64, -1, math.MinInt64},
		{Forever, -1, Forever - 1},
	}
	for _, c := range cases {
		if got := Add(c.a, c.b); got != c.want {
			t.Errorf("Add(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestMul(t *testing.T) {
	cases := []struct {
		d    time.Duration
		f    float64
		want time.Duration
	}{
		{time.Second, 1.5, 1500 * time.Millisecond},
		{Forever, 1.5, Forever},
		{Forever / 2, 3, Forever},
		{time.Second, math.Inf(1), Forever},
		{time.Second, math.Inf(-1), math.MinInt64},
		{time.Second, math.NaN(), 0},
	}
	for _, c := range cases {
		if got := Mul(c.d, c.f); got != c.want {
			t.Errorf("Mul(%d, %v) = %d, want %d", c.d, c.f, got, c.want)
		}
	}
}

func TestMulInt(t *testing.T) {
	cases := []struct {
		d    time.Duration
		n    int64
		want time.Duration
	}{
		{time.Second, 3, 3 * time.Second},
		{time.Second, math.MaxInt64, Forever},
		{time.Second, math.MinInt64, math.MinInt64},
		{-time.Second, math.MaxInt64, math.MinInt64},
		{math.MinInt64, -1, Forever},
		{0, math.MaxInt64, 0},
	}
	for _, c := range cases {
		if got := MulInt(c.d, c.n); got != c.want {
			t.Errorf("MulInt(%d, %d) = %d, want %d", c.d, c.n, got, c.want)
		}
	}
}

// TestTimeAddSaturates checks the guarantee the layers rely on when they
// compute a deadline with time.Time.Add: it saturates, never wraps.
func TestTimeAddSaturates(t *testing.T) {
	now := time.Now()
	got := now.Add(Forever)
	if !got.After(now.Add(100 * 365 * 24 * time.Hour)) {
		t.Errorf("now.Add(Forever) = %v, not far in the future", got)
	}
	if got.Sub(now) <= 0 {
		t.Errorf("now.Add(Forever).Sub(now) = %v, want positive", got.Sub(now))
	}
}

func TestMillisSeconds(t *testing.T) {
	if got := Millis(Forever); got <= 0 {
		t.Errorf("Millis(Forever) = %d", got)
	}
	if got := Millis(time.Microsecond); got != 1 {
		t.Errorf("Millis(1µs) = %d, want 1", got)
	}
	if got := Seconds(Forever); got <= 0 {
		t.Errorf("Seconds(Forever) = %d", got)
	}
	if got := Seconds(1500 * time.Millisecond); got != 2 {
		t.Errorf("Seconds(1.5s) = %d, want 2", got)
	}
	if got := FromSeconds(math.MaxInt64); got != Forever {
		t.Errorf("FromSeconds(max) = %d", got)
	}
}
