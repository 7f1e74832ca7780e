package idempotency

// MemoryExpiryLen returns the number of items in s's expiry heaps.
func MemoryExpiryLen(s *MemoryStore) int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.expiry)
		sh.mu.Unlock()
	}
	return n
}
