package breaker

import (
	"math/bits"
	"runtime"
	"sync/atomic"
	"unsafe"
)

// cacheLine is the padding unit that keeps hot words apart. 128 bytes,
// not 64, because x86 prefetches cache lines in adjacent pairs.
const cacheLine = 128

// stripe is one shard of the breaker's hot counters, alone on its cache
// line(s).
type stripe struct {
	successes   atomic.Int64
	rejections  atomic.Int64
	latencySum  atomic.Int64 // nanoseconds of the measured calls
	latencyN    atomic.Int64 // number of measured calls
	lastSuccess atomic.Int64 // Breaker.sinceEpoch of a success; 0: none
	_           [cacheLine - 40]byte
}

// stripes are the totals the hot paths update (successes, rejections,
// latencies), sharded so that parallel callers on different cores write to
// different cache lines instead of all contending for one counter.
//
// A call picks its stripe from the address of a variable on its own stack
// (see Breaker.pick). Goroutines have distinct stacks, so concurrent
// callers land on different stripes without any per-goroutine state,
// random number or clock read, and a goroutine keeps its stripe from call
// to call. When two goroutines do collide (their compare-and-swap on a
// stripe fails), the breaker's salt changes, which reshuffles every
// goroutine's stripe; the salt is written only then, so in the steady state
// every word the fast path touches is either read-only or written by one
// core.
type stripes struct {
	s     []stripe
	shift uint8 // 64 - log2(len(s))
}

func newStripes() stripes {
	// Four stripes per processor keep the chance that two running
	// goroutines share one low; 8 to 64 of them cost 1 to 8 KiB.
	k := min(max(bits.Len(uint(4*runtime.GOMAXPROCS(0)-1)), 3), 6)
	return stripes{s: make([]stripe, 1<<k), shift: uint8(64 - k)}
}

// pick returns the calling goroutine's stripe.
func (b *Breaker) pick() *stripe {
	var here byte
	// Only the address is used, as a number: it identifies the goroutine's
	// stack. Stacks are at least 2 KiB apart, so dropping the low 8 bits
	// keeps goroutines distinct; the multiplication (Fibonacci hashing)
	// spreads neighbouring stacks over all stripes through its top bits.
	a := uint64(uintptr(unsafe.Pointer(&here)))>>8 + b.salt.Load()
	return &b.counters.s[(a*0x9E3779B97F4A7C15)>>b.counters.shift]
}

// inc adds 1 to c, which is a counter of a stripe.
func (b *Breaker) inc(c *atomic.Int64) {
	v := c.Load()
	if !c.CompareAndSwap(v, v+1) {
		// Another core wrote this stripe at the same moment: count anyway,
		// and move everyone to new stripes.
		c.Add(1)
		b.salt.Add(1)
	}
}

// totals is the sum of the stripes.
type totals struct {
	successes, rejections int64
	latencySum, latencyN  int64
	lastSuccess           int64 // the latest of the stripes
}

// total adds up the stripes. Calls in progress may be counted in some
// fields and not yet in others.
func (st *stripes) total() totals {
	var t totals
	for i := range st.s {
		s := &st.s[i]
		t.successes += s.successes.Load()
		t.rejections += s.rejections.Load()
		t.latencySum += s.latencySum.Load()
		t.latencyN += s.latencyN.Load()
		t.lastSuccess = max(t.lastSuccess, s.lastSuccess.Load())
	}
	return t
}

// successes returns the number of successes counted.
func (st *stripes) successes() int64 {
	var n int64
	for i := range st.s {
		n += st.s[i].successes.Load()
	}
	return n
}
