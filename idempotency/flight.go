package idempotency

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// flightShards is the number of independently locked parts of a
// Manager's table of calls in flight.
const flightShards = 32

type flightShard struct {
	mu      sync.Mutex
	flights map[string]*flight
	seq     uint64   // claims led from this shard, for owner tokens
	_       [40]byte // keep shards' locks on separate cache lines
}

// flight is a call that holds a key in this process, which duplicates
// wait for. done is made by the first waiter (most calls have none), under
// the shard's lock. The result fields are written once, before done is
// closed, and read only after.
type flight struct {
	done        chan struct{}
	fingerprint string
	owner       string      // the leader's owner token
	claimed     atomic.Bool // the leader holds the claim and runs fn: renew its lease
	leaseLost   atomic.Bool // an extension found the lease lost: stop renewing

	val     any
	err     error
	outcome outcome
	landed  bool // read only by the leader
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

// join returns the flight for key: the one in progress, with the channel
// its waiters wait on, or a new one that the caller leads (leader true)
// and must land.
func (m *Manager) join(key, fingerprint string) (f *flight, done <-chan struct{}, leader bool) {
	i := m.shardIndex(key)
	sh := &m.flights[i]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if f := sh.flights[key]; f != nil {
		if f.done == nil {
			f.done = make(chan struct{})
		}
		return f, f.done, false
	}
	if sh.flights == nil {
		sh.flights = make(map[string]*flight)
	}
	sh.seq++
	f = &flight{fingerprint: fingerprint, owner: m.owner(i, sh.seq)}
	sh.flights[key] = f
	return f, nil, true
}

// land publishes the flight's result to its waiters and removes it from
// the table: later calls go to the store.
func (m *Manager) land(key string, f *flight, val any, err error, o outcome) {
	f.val, f.err, f.outcome, f.landed = val, err, o, true
	sh := m.flightShard(key)
	sh.mu.Lock()
	delete(sh.flights, key)
	done := f.done
	sh.mu.Unlock()
	if done != nil {
		close(done)
	}
}
