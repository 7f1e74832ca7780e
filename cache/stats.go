package cache

// Stats counts what a cache has done since it was created, as returned by
// [Cache.Stats]: a plain value, owned by the caller. Counters only grow;
// Purge does not reset them.
type Stats struct {
	// Hits counts reads that returned a value: Get, and fallback lookups
	// that served one.
	Hits uint64
	// Misses counts reads that returned nothing: no entry, an expired one,
	// or, for a fallback lookup, one older than the fallback's MaxAge.
	Misses uint64
	// Evictions counts live entries removed to make room for a new key.
	Evictions uint64
	// Expirations counts entries removed, or replaced, after their time to
	// live had passed.
	Expirations uint64
}

// HitRatio returns Hits / (Hits + Misses), or 0 before the first read. It
// only reads s.
func (s Stats) HitRatio() float64 {
	total := s.Hits + s.Misses
	if total == 0 {
		return 0
	}
	return float64(s.Hits) / float64(total)
}

// Stats returns the cache's counters. It is safe for concurrent use; under
// concurrent traffic the counters are read one shard at a time, so the
// result may mix moments a few operations apart.
func (c *Cache[K, V]) Stats() Stats {
	var st Stats
	for i := range c.shards {
		s := &c.shards[i]
		st.Hits += s.hits.Load()
		st.Misses += s.misses.Load()
		st.Evictions += s.evictions.Load()
		st.Expirations += s.expirations.Load()
	}
	return st
}
