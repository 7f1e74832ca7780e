package cache

import (
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// model is a plain reference implementation of the cache's documented
// behaviour for a single shard: SIEVE over a slice (index 0 is the oldest
// entry) with per-entry expiry. The cache must agree with it on every
// operation.
type model struct {
	capacity int
	q        []*modelEntry
	hand     *modelEntry // nil: start at the oldest
	stats    Stats
}

type modelEntry struct {
	key, value int
	expires    time.Time
	visited    bool
}

func (m *model) find(k int) int {
	return slices.IndexFunc(m.q, func(e *modelEntry) bool { return e.key == k })
}

// remove drops q[i]; a hand on it moves to the next newer entry.
func (m *model) remove(i int) {
	if m.hand == m.q[i] {
		m.hand = nil
		if i+1 < len(m.q) {
			m.hand = m.q[i+1]
		}
	}
	m.q = slices.Delete(m.q, i, i+1)
}

func (m *model) get(k int, now time.Time) (int, bool) {
	i := m.find(k)
	switch {
	case i < 0:
		m.stats.Misses++
		return 0, false
	case !now.Before(m.q[i].expires):
		m.remove(i)
		m.stats.Expirations++
		m.stats.Misses++
		return 0, false
	}
	m.q[i].visited = true
	m.stats.Hits++
	return m.q[i].value, true
}

func (m *model) set(k, v int, ttl time.Duration, now time.Time) {
	if ttl <= 0 {
		m.del(k, now)
		return
	}
	if i := m.find(k); i >= 0 {
		e := m.q[i]
		if !now.Before(e.expires) {
			m.stats.Expirations++
			e.visited = false
		} else {
			e.visited = true
		}
		e.value, e.expires = v, now.Add(ttl)
		return
	}
	if len(m.q) >= m.capacity {
		i := 0
		if m.hand != nil {
			i = slices.Index(m.q, m.hand)
		}
		for now.Before(m.q[i].expires) && m.q[i].visited {
			m.q[i].visited = false
			if i++; i == len(m.q) {
				i = 0
			}
		}
		if now.Before(m.q[i].expires) {
			m.stats.Evictions++
		} else {
			m.stats.Expirations++
		}
		m.hand = m.q[i]
		m.remove(i)
	}
	m.q = append(m.q, &modelEntry{key: k, value: v, expires: now.Add(ttl)})
}

func (m *model) del(k int, now time.Time) bool {
	i := m.find(k)
	if i < 0 {
		return false
	}
	live := now.Before(m.q[i].expires)
	if !live {
		m.stats.Expirations++
	}
	m.remove(i)
	return live
}

func TestAgainstModel(t *testing.T) {
	for seed := range uint64(40) {
		synctest.Test(t, func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			capacity := 1 + r.IntN(8)
			const ttl = 10 * time.Second
			c := newCache[int, int](t, Config{MaxEntries: capacity, TTL: ttl})
			m := &model{capacity: capacity}
			for step := range 500 {
				k := r.IntN(2 * capacity)
				now := time.Now()
				switch op := r.IntN(10); {
				case op < 4:
					gv, gok := c.Get(k)
					mv, mok := m.get(k, now)
					require.Equal(t, mok, gok, "seed %d step %d: Get(%d) found", seed, step, k)
					require.Equal(t, mv, gv, "seed %d step %d: Get(%d) value", seed, step, k)
				case op < 6:
					c.Set(k, step)
					m.set(k, step, ttl, now)
				case op < 8:
					d := time.Duration(r.IntN(20)-2) * time.Second
					c.SetWithTTL(k, step, d)
					m.set(k, step, d, now)
				case op < 9:
					require.Equal(t, m.del(k, now), c.Delete(k), "seed %d step %d: Delete(%d)", seed, step, k)
				default:
					time.Sleep(time.Duration(r.IntN(4)) * time.Second)
				}
				require.Equal(t, len(m.q), c.Len(), "seed %d step %d: Len", seed, step)
				require.Equal(t, m.stats, c.Stats(), "seed %d step %d: Stats", seed, step)
			}
			var want []int
			for i := len(m.q) - 1; i >= 0; i-- {
				want = append(want, m.q[i].key)
			}
			require.Equal(t, want, queue(c), "seed %d: final queue order", seed)
			checkShard(t, &c.shards[0])
		})
	}
}
