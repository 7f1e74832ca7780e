package breaker

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

func TestStripesSized(t *testing.T) {
	st := newStripes()
	n := len(st.s)
	assert.GreaterOrEqual(t, n, 8)
	assert.LessOrEqual(t, n, 64)
	assert.Equal(t, 0, n&(n-1), "a power of two")
	assert.GreaterOrEqual(t, n, min(4*runtime.GOMAXPROCS(0), 64))
	assert.Equal(t, uint8(64-len64(n)), st.shift)
}

func len64(n int) int {
	k := 0
	for 1<<k < n {
		k++
	}
	return k
}

// Goroutines that share a stripe still count every call, and their
// collisions move the salt.
func TestStripesCountUnderCollisions(t *testing.T) {
	b := newBreakerT(t, Config{RequestTimeout: -1})
	b.counters = stripes{s: make([]stripe, 1), shift: 64} // every goroutine on stripe 0
	fn := func(context.Context) (int, error) { return 1, nil }
	const goroutines, calls = 8, 20000
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range calls {
				Do(context.Background(), b, fn)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(goroutines*calls), b.Stats().Successes)
	if runtime.GOMAXPROCS(0) > 1 {
		t.Logf("salt moved %d times", b.salt.Load())
	}
}

func TestPickSpreadsGoroutines(t *testing.T) {
	b := newBreakerT(t, Config{})
	seen := make(map[*stripe]bool)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			st := b.pick()
			mu.Lock()
			seen[st] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	assert.Greater(t, len(seen), 1, "64 goroutines do not all share one stripe")
}

// The hot words must not share cache lines with what other cores write.
func TestLayout(t *testing.T) {
	var b Breaker
	assert.Equal(t, uintptr(cacheLine), unsafe.Offsetof(b.readMostly))
	assert.Zero(t, unsafe.Offsetof(b.salt)%cacheLine)
	assert.GreaterOrEqual(t, unsafe.Offsetof(b.salt)-unsafe.Offsetof(b.readMostly), unsafe.Sizeof(b.readMostly))
	assert.Equal(t, unsafe.Offsetof(b.salt)+cacheLine, unsafe.Offsetof(b.nextAttempt))
	assert.Equal(t, uintptr(cacheLine), unsafe.Sizeof(stripe{}))
}
