package idempotency

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// flightShards is the number of independently locked parts of a
// Manager's table of calls in flight.
const flightShards = 32

type flightShard struct {
	mu      sync.Mutex
	flights map[flightKey]*flight
	seq     uint64   // claims led from this shard, for owner tokens
	_       [40]byte // keep shards' locks on separate cache lines
}

// flightKey files a flight under its key and fingerprint. Only calls with
// the same fingerprint share a flight: a call's fingerprint says nothing
// about the stored record until the store answered its claim, so calls
// with different fingerprints each ask the store, which judges them all by
// the fingerprint it holds.
type flightKey struct {
	key, fingerprint string
}

// flight is a call that holds a key in this process, which duplicates
// wait for. done is made by the first waiter (most calls have none), under
// the shard's lock. The result fields are written once, before done is
// closed, and read only after.
//
// A flight is also the context its leader's operation runs with (the
// caller's context, plus the flight as a value), so that a call made from
// inside the operation with the same key finds itself instead of waiting
// for itself.
type flight struct {
	context.Context // the leader's context, once the leader runs fn

	key         string
	fingerprint string
	owner       string // the leader's owner token
	runKey      string // the key the operation runs under (GenerationKey), once claimed
	done        chan struct{}
	claimed     atomic.Bool  // the leader holds the claim (runs fn, or writes its result): renew its lease
	leaseLost   atomic.Bool  // an extension found the lease lost: stop renewing
	leaseEnd    atomic.Int64 // the lease surely holds until then (nanoseconds on the Manager's clock)

	held    bool // the leader holds the claim (not settled yet); read only by the leader
	val     any
	err     error
	outcome outcome
	landed  bool // read only by the leader
	// outlived: the leader handed f to a goroutine that lands it once an
	// abandoned operation ends (see outlive); written and read only by
	// the leader.
	outlived bool
}

// flightContextKey is the context key under which a flight finds itself.
type flightContextKey struct{}

// Value returns the flight itself for flightContextKey, for
// keyContextKey (so that KeyFrom finds the key the operation runs under)
// and for attachedKeyKey (so that AttachedKey finds no key attached for a
// nested call), and the leader's context's value otherwise.
func (f *flight) Value(k any) any {
	switch k {
	case flightContextKey{}, keyContextKey{}, attachedKeyKey{}:
		return f
	}
	return f.Context.Value(k)
}

// within reports whether ctx is, or derives from, the context of f's
// operation: whether a call with ctx comes from inside f's operation.
func (f *flight) within(ctx context.Context) bool {
	for {
		g, _ := ctx.Value(flightContextKey{}).(*flight)
		switch {
		case g == nil:
			return false
		case g == f:
			return true
		}
		ctx = g.Context
	}
}

// settled records that the leader no longer holds the claim: its result
// was written or released, or the writes gave up. Renewal stops.
func (f *flight) settled() {
	f.held = false
	f.claimed.Store(false)
}

// outcome says what a flight's waiters make of its result.
type outcome uint8

const (
	// executed: the leader ran the operation; waiters share its result,
	// as a replay.
	executed outcome = iota
	// replayed: the leader found a stored result; waiters share it.
	replayed
	// refused: nothing ran (a conflict or a store failure); waiters get
	// the same error.
	refused
	// conflict: like refused, and the error is a conflict.
	conflict
	// panicked: the leader's operation panicked; waiters get ErrPanicked.
	panicked
	// abandoned: the leader's own context ended its call without a
	// stored result; waiters start over, and one of them executes.
	abandoned
)

func (m *Manager) flightShard(key string) *flightShard {
	return &m.flights[m.shardIndex(key)]
}

func (m *Manager) shardIndex(key string) uint64 {
	return maphash.String(m.seed, key) % flightShards
}

// join returns the flight for key and fingerprint: the one in progress,
// with the channel its waiters wait on, or a new one that the caller
// leads (leader true) and must land.
func (m *Manager) join(key, fingerprint string) (f *flight, done <-chan struct{}, leader bool) {
	i := m.shardIndex(key)
	sh := &m.flights[i]
	fk := flightKey{key, fingerprint}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if f := sh.flights[fk]; f != nil {
		if f.done == nil {
			f.done = make(chan struct{})
		}
		return f, f.done, false
	}
	if sh.flights == nil {
		sh.flights = make(map[flightKey]*flight)
	}
	sh.seq++
	f = &flight{key: key, fingerprint: fingerprint, owner: m.owner(i, sh.seq)}
	sh.flights[fk] = f
	return f, nil, true
}

// land publishes the flight's result to its waiters and removes it from
// the table: later calls go to the store.
func (m *Manager) land(f *flight, val any, err error, o outcome) {
	f.val, f.err, f.outcome, f.landed = val, err, o, true
	sh := m.flightShard(f.key)
	sh.mu.Lock()
	delete(sh.flights, flightKey{f.key, f.fingerprint})
	done := f.done
	sh.mu.Unlock()
	if done != nil {
		close(done)
	}
}
