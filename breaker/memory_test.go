package breaker

import (
	"context"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
)

// Issue 14, item 6: every structure that grows with input stays within its
// documented bound. A breaker's are fixed: the failure run holds at most
// FailureThreshold times, the ratio window 10 buckets, one reset timer at
// a time; a Group holds one breaker per distinct name it was given.

// heapAlloc returns the live heap after a full collection.
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func churnOps(t *testing.T) int {
	if testing.Short() {
		return 100_000
	}
	return 1_000_000
}

func TestBreakerMemoryBoundedUnderChurn(t *testing.T) {
	for name, cfg := range map[string]Config{
		"consecutive": {FailureThreshold: 50, RequestTimeout: -1},
		"ratio":       {FailureRatio: 0.5, MinimumThroughput: 20, SamplingWindow: time.Second, RequestTimeout: -1},
		"listener":    {FailureThreshold: 3, OnEvent: func(bulwark.Event) {}},
		"ratio+timed": {FailureRatio: 0.3, MinimumThroughput: 5, SamplingWindow: 200 * time.Millisecond},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg.ResetTimeout = 50 * time.Millisecond
				b := newBreakerT(t, cfg)
				rng := rand.New(rand.NewPCG(1, 2))
				cancelled, cancel := context.WithCancel(context.Background())
				cancel()
				churn := func(n int) {
					for i := range n {
						switch r := rng.IntN(100); {
						case r < 45:
							ok(b)
						case r < 90:
							fail(b)
						case r < 93:
							Do(cancelled, b, nop)
						case r < 96:
							if done, err := b.Allow(); err == nil {
								done(nil)
							}
						case r < 98:
							b.Reset()
						default:
							b.ForceOpen()
						}
						if i%64 == 0 {
							time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
						}
					}
				}
				churn(10_000) // warm up: every structure at its working size
				before := heapAlloc()
				ops := churnOps(t)
				churn(ops)
				after := heapAlloc()
				st := b.Stats()
				require.Greater(t, st.Total, int64(ops/2))
				require.Positive(t, st.TimesOpened)
				growth := int64(after) - int64(before)
				t.Logf("%d operations, %d state changes: heap %+d bytes", ops, st.TimesOpened+st.TimesClosed, growth)
				assert.Less(t, growth, int64(256<<10), "the heap grew by %d bytes", growth)
				b.mu.Lock()
				assert.LessOrEqual(t, cap(b.c.run), max(cfg.FailureThreshold, defaultFailureThreshold)+1, "the failure run is bounded")
				b.mu.Unlock()
			})
		})
	}
}

func TestGroupMemoryBoundedByNames(t *testing.T) {
	g, err := NewGroup(Config{FailureThreshold: 2, RequestTimeout: -1})
	require.NoError(t, err)
	const names = 200
	name := make([]string, names)
	for i := range name {
		name[i] = "svc-" + strconv.Itoa(i)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	churn := func(n int) {
		for range n {
			i := rng.IntN(names)
			switch r := rng.IntN(100); {
			case r < 1:
				require.NoError(t, g.Configure(name[i], Config{FailureThreshold: 1 + rng.IntN(5), RequestTimeout: -1}))
			case r < 50:
				ok(g.Get(name[i]))
			case r < 99:
				fail(g.Get(name[i]))
			default:
				g.Get(name[i]).Reset()
			}
		}
	}
	churn(20_000)
	require.Len(t, g.Names(), names)
	before := heapAlloc()
	churn(churnOps(t))
	after := heapAlloc()
	growth := int64(after) - int64(before)
	t.Logf("heap %+d bytes over %d names", growth, names)
	assert.Len(t, g.Names(), names, "a Group holds one breaker per name, no more")
	assert.Less(t, growth, int64(256<<10), "the heap grew by %d bytes", growth)
}
