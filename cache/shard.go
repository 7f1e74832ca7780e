package cache

import (
	"sync"
	"sync/atomic"
)

// entry is one key's value in a shard, linked into the shard's SIEVE queue.
// Every field but visited is guarded by the shard's lock; visited is set by
// readers holding only the read lock, hence atomic.
type entry[K comparable, V any] struct {
	key     K
	value   V
	stored  int64 // when the value was set, nanoseconds since the cache's epoch
	expires int64 // when it stops being readable, same clock
	visited atomic.Bool
	// prev is toward the head (newer entries), next toward the tail.
	prev, next *entry[K, V]
}

// shard is an independent part of a cache: a map for lookups and a SIEVE
// queue for eviction, under one RWMutex. Its counters are atomic so that
// readers can count under the read lock or after releasing it.
type shard[K comparable, V any] struct {
	mu       sync.RWMutex
	items    map[K]*entry[K, V]
	capacity int
	// The SIEVE queue: new entries go in at head; the hand walks from the
	// tail toward the head, sparing visited entries (and clearing their
	// mark) and evicting the first unvisited one.
	head, tail, hand *entry[K, V]

	hits, misses, evictions, expirations atomic.Uint64

	// Keep neighbouring shards' locks and counters off this cache line.
	_ [64]byte
}

func (s *shard[K, V]) init(capacity int) {
	s.capacity = capacity
	s.items = make(map[K]*entry[K, V])
}

// set stores value for key. The caller holds the write lock.
func (s *shard[K, V]) set(key K, value V, now, expires int64) {
	if e := s.items[key]; e != nil {
		if now >= e.expires {
			// The old value had expired: this is a new entry in all but
			// memory, and it starts unvisited.
			s.expirations.Add(1)
			e.visited.Store(false)
		} else if !e.visited.Load() {
			// Overwriting a live value is a use of the key.
			e.visited.Store(true)
		}
		e.value, e.stored, e.expires = value, now, expires
		return
	}
	var e *entry[K, V]
	if len(s.items) >= s.capacity {
		e = s.evict(now)
		// Reuse the evicted entry's memory: no reader can hold it, since
		// readers keep no pointer past their read lock.
		var zero V
		e.value = zero
		e.visited.Store(false)
	} else {
		e = new(entry[K, V])
	}
	e.key, e.value, e.stored, e.expires = key, value, now, expires
	s.items[key] = e
	s.pushHead(e)
}

// evict removes one entry chosen by SIEVE and returns it. An expired entry
// the hand meets goes first, whatever its mark. The caller holds the write
// lock and the shard is not empty.
func (s *shard[K, V]) evict(now int64) *entry[K, V] {
	e := s.hand
	if e == nil {
		e = s.tail
	}
	for now < e.expires && e.visited.Load() {
		e.visited.Store(false)
		if e = e.prev; e == nil {
			e = s.tail
		}
	}
	if now >= e.expires {
		s.expirations.Add(1)
	} else {
		s.evictions.Add(1)
	}
	s.hand = e // remove moves the hand on to e's newer neighbour
	s.remove(e)
	return e
}

// removeExpired removes key's entry if it is still there and expired at
// now, counting an expiration. It takes the write lock.
func (s *shard[K, V]) removeExpired(key K, now int64) {
	s.mu.Lock()
	if e := s.items[key]; e != nil && now >= e.expires {
		s.remove(e)
		s.expirations.Add(1)
	}
	s.mu.Unlock()
}

// remove unlinks e and deletes it from the map, moving the hand past it.
// The caller holds the write lock.
func (s *shard[K, V]) remove(e *entry[K, V]) {
	delete(s.items, e.key)
	if s.hand == e {
		s.hand = e.prev
	}
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// pushHead links e in as the newest entry. The caller holds the write lock.
func (s *shard[K, V]) pushHead(e *entry[K, V]) {
	e.next = s.head
	if s.head != nil {
		s.head.prev = e
	} else {
		s.tail = e
	}
	s.head = e
}

// purge drops every entry. The caller holds the write lock.
func (s *shard[K, V]) purge() {
	clear(s.items)
	s.head, s.tail, s.hand = nil, nil, nil
}
