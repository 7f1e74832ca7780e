package idempotency

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark/internal/sat"
)

// MemoryConfig configures a [MemoryStore]. The zero value is ready to use.
type MemoryConfig struct {
	// MaxEntries bounds the number of records held, in progress and
	// completed together. 0 means 100,000; negative is an error. A claim
	// that finds its shard full evicts the completed record closest to
	// its expiry (a duplicate of that operation would then run again); if
	// the shard holds only in-progress claims, it drops those whose lease
	// ran out, and if none did, the claim fails rather than forget one.
	// Records are spread over shards by key and each shard holds an equal
	// share, so the store can start evicting a little before it holds
	// MaxEntries records.
	//
	// The bound holds under any sequence of operations: besides at most
	// MaxEntries records, the store keeps an index of completed records'
	// expiries that never holds more than 2×MaxEntries + 64×(number of
	// shards, at most 64) small items; items of records deleted by Forget
	// are dropped once they outnumber the live ones.
	MaxEntries int
}

// DefaultMaxEntries is the MaxEntries of a MemoryConfig left at zero.
const DefaultMaxEntries = 100_000

// MemoryStore is a [Store] that keeps records in this process's memory:
// bounded, expiring records by their TTL and leases, and storing values as
// they are, without serialization. A Manager built with a nil Store uses a
// new MemoryStore. It suits a single process; processes that must share
// keys need a shared store.
//
// Values are kept, and replayed, as the very values the operation
// returned: a replayed slice, map or pointer shares memory with the
// original, so results should be treated as immutable. Stored errors are
// kept as the original error values.
//
// Records are spread over independently locked shards, so unrelated keys
// do not contend. There is no background goroutine: each claim drops the
// completed records of its shard whose TTL ran out, and the claims of dead
// holders (whose leases ran out) are dropped when they are claimed again
// or when their shard is otherwise full.
//
// Leases and TTLs saturate: one too long to add to the current time
// (math.MaxInt64 is the usual way to say "forever") keeps the record as
// long as the store can, about 292 years from the store's creation; it
// never wraps around into a record born expired.
//
// Its methods never block on anything but their own short critical
// sections, and ignore their context; on a nil *MemoryStore they return
// an error wrapping [ErrInvalid]. A MemoryStore is safe for concurrent
// use.
type MemoryStore struct {
	seed   maphash.Seed
	base   time.Time // expiries are monotonic nanoseconds since base
	mask   uint64
	shards []memShard
}

type memShard struct {
	mu      sync.Mutex
	entries map[string]memEntry
	expiry  expiryHeap // completed entries by expiry
	gen     uint64
	max     int
	_       [64]byte // keep shards' locks on separate cache lines
}

type memEntry struct {
	state       State // InProgress, Completed, or forgotten
	owner       string
	fingerprint string
	expires     int64  // nanoseconds since the store's base time
	gen         uint64 // the entry's identity, for its expiry item
	keyGen      uint64 // the key's generation (Record.Generation)
	genUntil    int64  // keyGen > 0: kept at least until then (the forgotten record's expiry)
	value       any
	err         error
}

// forgotten is the state of the entry Forget leaves behind: not a record
// (Get and Claim see none), but the key's next generation, kept until the
// forgotten record would have expired, with the record's expiry item.
const forgotten State = 0

var errNilMemoryStore = fmt.Errorf("%w: nil *MemoryStore", ErrInvalid)

var errMemoryFull = errors.New("idempotency: memory store full: every record is in progress (raise MaxEntries)")

// NewMemoryStore returns an empty MemoryStore. It returns an error naming
// the field, wrapping [ErrInvalid], if cfg is invalid.
func NewMemoryStore(cfg MemoryConfig) (*MemoryStore, error) {
	if cfg.MaxEntries < 0 {
		return nil, fmt.Errorf("%w: MemoryConfig.MaxEntries must not be negative, got %d", ErrInvalid, cfg.MaxEntries)
	}
	limit := cfg.MaxEntries
	if limit == 0 {
		limit = DefaultMaxEntries
	}
	// Up to 64 shards, each holding at least 64 records.
	n := 1
	if per := limit / 64; per > 1 {
		n = 1 << min(6, bits.Len(uint(per))-1)
	}
	s := &MemoryStore{
		seed:   maphash.MakeSeed(),
		base:   time.Now(),
		mask:   uint64(n - 1),
		shards: make([]memShard, n),
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.entries = make(map[string]memEntry)
		sh.max = limit / n
		if i < limit%n {
			sh.max++
		}
	}
	return s, nil
}

func (s *MemoryStore) shard(key string) *memShard {
	return &s.shards[maphash.String(s.seed, key)&s.mask]
}

func (s *MemoryStore) now() int64 { return int64(time.Since(s.base)) }

func (s *MemoryStore) record(e memEntry) Record {
	return Record{
		State:       e.state,
		Owner:       e.owner,
		Fingerprint: e.fingerprint,
		Generation:  e.keyGen,
		Expires:     s.base.Add(time.Duration(e.expires)),
		Value:       e.value,
		Err:         e.err,
	}
}

// Claim implements [Store.Claim]. It returns an error wrapping
// [ErrInvalid] if lease is not positive, and an error if the store is
// full of in-progress records.
func (s *MemoryStore) Claim(_ context.Context, key, owner, fingerprint string, lease time.Duration) (Record, bool, error) {
	if s == nil {
		return Record{}, false, errNilMemoryStore
	}
	if lease <= 0 {
		return Record{}, false, fmt.Errorf("%w: Claim: lease must be positive, got %v", ErrInvalid, lease)
	}
	now := s.now()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var keyGen uint64
	var genUntil int64
	if e, ok := sh.entries[key]; ok {
		if e.expires > now && e.state != forgotten {
			return s.record(e), false, nil
		}
		// A forgotten key's next generation, or the generation of a
		// record that expired (a lapsed claim: its rerun keeps the key).
		if e.state == forgotten {
			e.genUntil = max(e.genUntil, e.expires)
		}
		if e.genUntil > now {
			keyGen, genUntil = e.keyGen, e.genUntil
		}
		delete(sh.entries, key)
		// The replaced entry's expiry item, if it had one, is stale now.
		sh.compactIfSparse()
	}
	// Dropping what expired costs a look at the heap's top when nothing
	// did.
	sh.dropExpired(now)
	if len(sh.entries) >= sh.max && !sh.evictCompleted() && !sh.dropExpiredClaims(now) {
		return Record{}, false, errMemoryFull
	}
	sh.gen++
	e := memEntry{state: InProgress, owner: owner, fingerprint: fingerprint, expires: sat.AddNanos(now, lease), gen: sh.gen, keyGen: keyGen, genUntil: genUntil}
	sh.entries[key] = e
	return s.record(e), true, nil
}

// held returns owner's live in-progress entry for key. The shard's lock
// must be held.
func (sh *memShard) held(key, owner string, now int64) (memEntry, bool) {
	e, ok := sh.entries[key]
	if !ok || e.state != InProgress || e.owner != owner || e.expires <= now {
		return memEntry{}, false
	}
	return e, true
}

func leaseLost(op, key string) error {
	return fmt.Errorf("%w: %s %q", ErrLeaseLost, op, key)
}

// Extend implements [Store.Extend]. It returns an error wrapping
// [ErrInvalid] if lease is not positive.
func (s *MemoryStore) Extend(_ context.Context, key, owner string, lease time.Duration) error {
	if s == nil {
		return errNilMemoryStore
	}
	if lease <= 0 {
		return fmt.Errorf("%w: Extend: lease must be positive, got %v", ErrInvalid, lease)
	}
	now := s.now()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.held(key, owner, now)
	if !ok {
		return leaseLost("extend", key)
	}
	e.expires = sat.AddNanos(now, lease)
	sh.entries[key] = e
	return nil
}

// Complete implements [Store.Complete]. It keeps out.Value and out.Err as
// they are (an error with an empty message wrapped in one that says so).
// If out.Err's Error method panics, Complete releases the claim and
// panics again. It returns an error wrapping [ErrInvalid] if ttl is not
// positive.
func (s *MemoryStore) Complete(_ context.Context, key, owner string, out Outcome, ttl time.Duration) error {
	if s == nil {
		return errNilMemoryStore
	}
	if ttl <= 0 {
		return fmt.Errorf("%w: Complete: ttl must be positive, got %v", ErrInvalid, ttl)
	}
	outErr := s.errorOf(key, owner, out.Err) // before locking: Error is the caller's code
	now := s.now()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.held(key, owner, now)
	if !ok {
		return leaseLost("complete", key)
	}
	e.state = Completed
	e.expires = sat.AddNanos(now, ttl)
	e.err = outErr
	if outErr == nil {
		e.value = out.Value
	}
	sh.entries[key] = e
	sh.expiry.push(expiryItem{expires: e.expires, gen: e.gen, key: key})
	return nil
}

// errorOf returns withMessage(err). If err's Error method panics, it
// releases owner's claim on key, so that the key is not held until the
// lease runs out, and panics again with the same value.
func (s *MemoryStore) errorOf(key, owner string, err error) error {
	done := false
	defer func() {
		if !done {
			p := recover() // nil for runtime.Goexit, which goes on
			_ = s.Release(context.Background(), key, owner)
			if p != nil {
				panic(p)
			}
		}
	}()
	err = withMessage(err)
	done = true
	return err
}

// Release implements [Store.Release].
func (s *MemoryStore) Release(_ context.Context, key, owner string) error {
	if s == nil {
		return errNilMemoryStore
	}
	now := s.now()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.held(key, owner, now)
	if !ok {
		return leaseLost("release", key)
	}
	if e.keyGen > 0 && e.genUntil > now {
		// Keep the key's generation, for the next claim.
		sh.gen++
		sh.entries[key] = memEntry{state: forgotten, expires: e.genUntil, gen: sh.gen, keyGen: e.keyGen}
		sh.expiry.push(expiryItem{expires: e.genUntil, gen: sh.gen, key: key})
		return nil
	}
	delete(sh.entries, key)
	return nil
}

// Forget implements [Store.Forget].
func (s *MemoryStore) Forget(_ context.Context, key string) (bool, error) {
	if s == nil {
		return false, errNilMemoryStore
	}
	now := s.now()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.entries[key]
	if !ok || e.expires <= now || e.state != Completed {
		return false, nil
	}
	// The entry becomes the key's next generation, kept (with its expiry
	// item) until the record would have expired, or evicted like a
	// completed record when the shard is full.
	sh.entries[key] = memEntry{state: forgotten, expires: e.expires, gen: e.gen, keyGen: e.keyGen + 1, genUntil: max(e.genUntil, e.expires)}
	return true, nil
}

// Get implements [Store.Get].
func (s *MemoryStore) Get(_ context.Context, key string) (Record, bool, error) {
	if s == nil {
		return Record{}, false, errNilMemoryStore
	}
	now := s.now()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.entries[key]
	if !ok || e.expires <= now || e.state == forgotten {
		return Record{}, false, nil
	}
	return s.record(e), true, nil
}

// completed returns key's live completed record, with only the fields a
// replay needs (no Expires). It is the Manager's replay path: no claim, no
// context, no error.
func (s *MemoryStore) completed(key string) (rec Record, ok bool) {
	now := s.now()
	sh := s.shard(key)
	sh.mu.Lock()
	if e, found := sh.entries[key]; found && e.state == Completed && e.expires > now {
		rec = Record{State: Completed, Fingerprint: e.fingerprint, Value: e.value, Err: e.err}
		ok = true
	}
	sh.mu.Unlock()
	return rec, ok
}

// Len returns the number of records held, including expired ones not
// dropped yet and the generations of forgotten keys (each kept until the
// forgotten record would have expired, and counted in MaxEntries); 0 for
// a nil store.
func (s *MemoryStore) Len() int {
	if s == nil {
		return 0
	}
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.entries)
		sh.mu.Unlock()
	}
	return n
}

// dropExpired deletes the completed entries whose TTL ran out, in expiry
// order. The shard's lock must be held.
func (sh *memShard) dropExpired(now int64) {
	for len(sh.expiry) > 0 && sh.expiry[0].expires <= now {
		it := sh.expiry.pop()
		if e, ok := sh.entries[it.key]; ok && e.gen == it.gen {
			delete(sh.entries, it.key)
		}
	}
}

// evictCompleted deletes the completed entry closest to its expiry and
// reports whether there was one. The shard's lock must be held.
func (sh *memShard) evictCompleted() bool {
	for len(sh.expiry) > 0 {
		it := sh.expiry.pop()
		if e, ok := sh.entries[it.key]; ok && e.gen == it.gen {
			delete(sh.entries, it.key)
			return true
		}
	}
	return false
}

// dropExpiredClaims deletes the in-progress entries whose lease ran out
// (their holders died) and reports whether it freed any. It scans the
// shard, so it runs only when the shard is full of in-progress entries.
// The shard's lock must be held.
func (sh *memShard) dropExpiredClaims(now int64) bool {
	freed := false
	for key, e := range sh.entries {
		if e.expires <= now {
			delete(sh.entries, key)
			freed = true
		}
	}
	return freed
}

// compactIfSparse rebuilds the expiry heap without the items of deleted
// entries once those outnumber the live ones: then the heap never holds
// more than 2×len(entries)+compactSlack items, and each rebuild, O(n), is
// paid for by the n+compactSlack deletions since the last one. The
// shard's lock must be held.
func (sh *memShard) compactIfSparse() {
	if len(sh.expiry) <= 2*len(sh.entries)+compactSlack {
		return
	}
	live := sh.expiry[:0]
	for _, it := range sh.expiry {
		if e, ok := sh.entries[it.key]; ok && e.gen == it.gen {
			live = append(live, it)
		}
	}
	clear(sh.expiry[len(live):]) // drop the keys of the stale items
	if cap(live) > 4*len(live)+2*compactSlack {
		live = append(make(expiryHeap, 0, 2*len(live)+compactSlack), live...)
	}
	sh.expiry = live
	sh.expiry.init()
}

// compactSlack is how many stale expiry items a shard may hold beyond
// twice its live entries before it compacts its heap.
const compactSlack = 64

// expiryItem files a completed entry (by key and generation) under its
// expiry.
type expiryItem struct {
	expires int64
	gen     uint64
	key     string
}

// expiryHeap is a binary min-heap of expiryItems by expiry. A completed
// entry has exactly one item; in-progress entries have none (they are
// never evicted). Items of entries deleted otherwise (Forget) stay until
// they come up and are then discarded, or until compactIfSparse drops
// them.
type expiryHeap []expiryItem

// init restores the heap order of h, in O(len(h)).
func (h expiryHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

// down moves the item at i down to its place.
func (h expiryHeap) down(i int) {
	for {
		least, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && h[l].expires < h[least].expires {
			least = l
		}
		if r < len(h) && h[r].expires < h[least].expires {
			least = r
		}
		if least == i {
			return
		}
		h[i], h[least] = h[least], h[i]
		i = least
	}
}

func (h *expiryHeap) push(it expiryItem) {
	*h = append(*h, it)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if s[parent].expires <= s[i].expires {
			break
		}
		s[parent], s[i] = s[i], s[parent]
		i = parent
	}
}

func (h *expiryHeap) pop() expiryItem {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s[last] = expiryItem{}
	s = s[:last]
	s.down(0)
	*h = s
	return top
}
