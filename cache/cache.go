// Package cache is a bounded, concurrency-safe TTL cache and the fallback
// layer of the bulwark stack, which answers a failed call with the last
// good result when that result is fresh enough.
//
// A [Cache] holds at most Config.MaxEntries entries, each for at most its
// time to live. When it is full, inserting evicts an entry chosen by SIEVE:
// an entry read since the eviction hand last passed it survives, the others
// go, oldest first. Expired entries are never returned; they are reclaimed
// lazily, when a read meets them or the eviction hand passes them, so the
// cache runs no goroutine and needs no Close.
//
// [Fallback], [FallbackFunc] and [DoFallback] wrap a call: every success is
// stored in the cache, and a failure that matches [FallbackConfig].When is
// answered with the stored value if it is younger than MaxAge, marked in
// the call's [bulwark.Report] and announced as a fallback:used event. The
// key of a call can be fixed, or come from its context ([WithKey],
// [KeyFrom]); [SkipFallback] exempts one call, such as a payment, that
// must never be answered with an old result. One cache of an interface
// type (for example *Cache[string, any]) can back the fallbacks of every
// result type.
//
// The package imports nothing of bulwark but its root package (and the
// module's internal saturating-arithmetic helper).
package cache

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"reflect"
	"runtime"
	"time"

	"github.com/bulwark-go/bulwark/internal/sat"
)

// Defaults for the zero fields of [Config].
const (
	DefaultMaxEntries = 10000
	DefaultTTL        = 5 * time.Minute
)

// ErrInvalid is wrapped by every error this package returns for nil or
// invalid input: a nil function or cache given to a fallback, and every
// configuration error (ErrInvalidConfig satisfies errors.Is(err,
// ErrInvalid)). Nothing runs and nothing is stored or counted when such
// an error is returned.
var ErrInvalid = errors.New("cache: invalid")

// ErrInvalidConfig is wrapped by the error [New] returns for a Config field
// it cannot accept; the message names the field. errors.Is(ErrInvalidConfig,
// ErrInvalid) holds.
var ErrInvalidConfig error = &invalidError{"cache: invalid config"}

// invalidError is a sentinel that is also ErrInvalid.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// Config configures a [Cache]. The zero value is ready to use: 10000
// entries, each kept for 5 minutes. New copies it; changing it afterwards
// changes nothing.
type Config struct {
	// MaxEntries bounds the number of entries the cache holds. When an
	// insert finds the cache full, an entry is evicted first. 0 means
	// 10000 (DefaultMaxEntries); a negative value is an error.
	//
	// A large cache is split into shards that each hold their share of
	// MaxEntries and evict on their own, so that parallel readers do not
	// contend on one lock; a cache of fewer than 128 entries has a single
	// shard and evicts in exact SIEVE order.
	MaxEntries int

	// TTL is how long an entry stored with Set stays readable. 0 means 5
	// minutes (DefaultTTL); a negative value is an error. SetWithTTL
	// chooses the time to live per entry. Expiry times saturate: a TTL
	// too long to represent, such as math.MaxInt64, means the entry never
	// expires (it still counts toward MaxEntries and can be evicted).
	TTL time.Duration
}

// Cache is a bounded map from keys to values in which every entry expires
// after its time to live. Create one with [New]; the zero Cache is not
// usable. As with a map, a key of interface type whose dynamic type is not
// comparable makes the method panic; the panic leaves no lock held and the
// cache usable.
//
// All methods are safe for concurrent use. Reads of different keys proceed
// in parallel: the cache is sharded and a read takes only its shard's read
// lock. Reads and writes cost no allocation once a key is present; an
// insert into a full cache reuses the evicted entry's memory.
type Cache[K comparable, V any] struct {
	shards []shard[K, V]
	mask   uint64 // len(shards)-1; 0 for a single shard, which needs no hash
	seed   maphash.Seed
	ttl    int64     // default time to live, in nanoseconds
	epoch  time.Time // entry times are nanoseconds since epoch (monotonic)
	// checkKey is set for a single-shard cache whose key type may panic
	// when compared (an interface, or a struct or array holding one):
	// lookup then compares the key before taking the lock, so that the
	// panic cannot leave the lock held. A sharded cache's hash panics
	// first anyway.
	checkKey bool
}

// minShardEntries is the smallest share of MaxEntries a shard gets when the
// cache is split: below it, sharding would make eviction noticeably less
// accurate than one global SIEVE.
const minShardEntries = 64

// New returns an empty cache configured by cfg, or an error wrapping
// [ErrInvalidConfig] that names the field it cannot accept.
func New[K comparable, V any](cfg Config) (*Cache[K, V], error) {
	if cfg.MaxEntries < 0 {
		return nil, fmt.Errorf("%w: MaxEntries is negative (%d)", ErrInvalidConfig, cfg.MaxEntries)
	}
	if cfg.TTL < 0 {
		return nil, fmt.Errorf("%w: TTL is negative (%v)", ErrInvalidConfig, cfg.TTL)
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	n := shardCount(cfg.MaxEntries, runtime.GOMAXPROCS(0))
	c := &Cache[K, V]{
		shards: make([]shard[K, V], n),
		mask:   uint64(n - 1),
		seed:   maphash.MakeSeed(),
		ttl:    int64(cfg.TTL),
		epoch:  time.Now(),
	}
	c.checkKey = n == 1 && mayPanicOnCompare(reflect.TypeFor[K]())
	for i := range c.shards {
		// Spread the remainder so that the capacities add up to MaxEntries.
		capacity := cfg.MaxEntries / n
		if i < cfg.MaxEntries%n {
			capacity++
		}
		c.shards[i].init(capacity)
	}
	return c, nil
}

// shardCount returns the number of shards, a power of two: about four per
// processor, but never so many that a shard holds fewer than
// minShardEntries entries.
func shardCount(maxEntries, procs int) int {
	n := 1
	for n < 4*procs && maxEntries/(2*n) >= minShardEntries {
		n *= 2
	}
	return n
}

// mayPanicOnCompare reports whether comparing two values of type t can
// panic: t is an interface, or holds one, whose dynamic type may be
// uncomparable.
func mayPanicOnCompare(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Array:
		return t.Len() > 0 && mayPanicOnCompare(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if mayPanicOnCompare(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}

// now returns the current time as nanoseconds since the cache's epoch. It
// reads the monotonic clock only.
func (c *Cache[K, V]) now() int64 {
	return int64(time.Since(c.epoch))
}

func (c *Cache[K, V]) shardFor(key K) *shard[K, V] {
	if c.mask == 0 {
		return &c.shards[0]
	}
	return &c.shards[maphash.Comparable(c.seed, key)&c.mask]
}

// Get returns the value stored for key and true, or the zero V and false
// when there is none or it has expired. A successful Get marks the entry as
// recently used, which protects it from the next eviction pass.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	v, _, ok := c.lookup(key, math.MaxInt64)
	return v, ok
}

// lookup returns the value of key and its age in nanoseconds if it is
// neither expired nor older than maxAge. It counts a hit or a miss.
//
// The clock is read after the read lock is released, and only when the key
// is present: the entry's state is taken at the lock, and the clock reading
// that follows is a moment when that state was still current or the entry
// had expired. Marking an entry visited that then turns out expired is
// harmless: the eviction hand takes expired entries whatever their mark.
func (c *Cache[K, V]) lookup(key K, maxAge int64) (value V, age int64, ok bool) {
	if c.checkKey && key != key {
		// A NaN is never found; an uncomparable key panics here, before
		// the shard's lock is taken.
		c.shards[0].misses.Add(1)
		return value, 0, false
	}
	return c.lookupIn(c.shardFor(key), key, maxAge)
}

// lookupIn is lookup in s, which must be key's shard.
func (c *Cache[K, V]) lookupIn(s *shard[K, V], key K, maxAge int64) (value V, age int64, ok bool) {
	s.mu.RLock()
	e := s.items[key]
	if e == nil {
		s.mu.RUnlock()
		s.misses.Add(1)
		return value, 0, false
	}
	if !e.visited.Load() {
		e.visited.Store(true)
	}
	value, stored, expires := e.value, e.stored, e.expires
	s.mu.RUnlock()

	now := c.now()
	if now >= expires {
		s.removeExpired(key, now)
		s.misses.Add(1)
		var zero V
		return zero, 0, false
	}
	if age = now - stored; age >= maxAge {
		s.misses.Add(1)
		var zero V
		return zero, 0, false
	}
	s.hits.Add(1)
	return value, age, true
}

// Set stores value for key with the cache's TTL, replacing any value
// stored before and restarting the entry's time to live. Inserting a new
// key into a full shard evicts an entry first. A key that is not equal to
// itself (a floating-point NaN, or a struct, array or interface holding
// one) could never be read back, so Set does not store it.
func (c *Cache[K, V]) Set(key K, value V) {
	c.set(key, value, c.ttl)
}

// SetWithTTL is Set with a time to live of ttl instead of the cache's
// TTL. A ttl of zero or less stores nothing and removes any entry for key,
// as an entry that expires at once would be never readable. A ttl too long
// to represent, such as math.MaxInt64, saturates: the entry never expires.
func (c *Cache[K, V]) SetWithTTL(key K, value V, ttl time.Duration) {
	if ttl <= 0 {
		c.Delete(key)
		return
	}
	c.set(key, value, int64(ttl))
}

func (c *Cache[K, V]) set(key K, value V, ttl int64) {
	if key != key {
		// A NaN, or a value holding one: no lookup could find it, and a
		// map never deletes it. Storing it would only waste a slot.
		return
	}
	c.setIn(c.shardFor(key), key, value, ttl)
}

// setIn is set in s, which must be key's shard, for a key equal to itself.
func (c *Cache[K, V]) setIn(s *shard[K, V], key K, value V, ttl int64) {
	now := c.now()
	expires := sat.AddNanos(now, time.Duration(ttl)) // saturates: never expires
	s.mu.Lock()
	s.set(key, value, now, expires)
	s.mu.Unlock()
}

// Delete removes the entry for key and reports whether a live (unexpired)
// entry was removed.
func (c *Cache[K, V]) Delete(key K) bool {
	s := c.shardFor(key)
	now := c.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.items[key]
	if e == nil {
		return false
	}
	s.remove(e)
	if now >= e.expires {
		s.expirations.Add(1)
		return false
	}
	return true
}

// Len returns the number of entries the cache holds. Expired entries are
// reclaimed lazily, so Len may count some that have expired but were not
// yet met by a read or by the eviction hand; Get never returns those.
func (c *Cache[K, V]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.items)
		s.mu.RUnlock()
	}
	return n
}

// Purge removes every entry. It does not count the removed entries as
// evictions or expirations, and it leaves the statistics as they were.
func (c *Cache[K, V]) Purge() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.purge()
		s.mu.Unlock()
	}
}
