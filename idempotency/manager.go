package idempotency

import (
	"context"
	"fmt"
	"hash/maphash"
	"reflect"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/google/uuid"
)

// Defaults of a Config left at its zero value.
const (
	DefaultTTL   = 24 * time.Hour
	DefaultLease = time.Minute
)

// Config configures a [Manager]. The zero value gives the documented
// defaults.
type Config struct {
	// TTL is how long a completed result is kept and replayed to
	// duplicates. 0 means DefaultTTL (24h); negative is an error.
	// math.MaxInt64 means as long as the store can keep it: stores
	// saturate a TTL too long to add to their clock, never wrap it.
	TTL time.Duration

	// Lease is how long a claim holds a key without news from its
	// holder: a process that dies mid-operation blocks its key for at
	// most this long. While the operation runs, the Manager extends the
	// lease every Lease/3 (all running calls' leases in one round, in one
	// batch if the store is a [BatchExtender]), so a slow operation keeps
	// its claim: it is lost only if two extensions in a row fail. Once
	// the operation returned, a failed result write is retried while the
	// lease holds. 0 means DefaultLease (1m); negative is an error.
	// math.MaxInt64 saturates like TTL (then a dead holder's claim never
	// runs out).
	Lease time.Duration

	// DuplicatePolicy says what a duplicate does when it arrives while
	// the first call for its key runs in this process (on this Manager).
	// The zero value, DuplicateWait, waits for that call and shares its
	// result. Duplicates from other processes always get ErrInProgress.
	DuplicatePolicy DuplicatePolicy

	// CacheErrors, when true, stores the errors IsPermanent accepts like
	// results, so that duplicates get the same error back without
	// running the operation again. When false (the default), a failed
	// call releases its claim and the next call runs the operation again.
	CacheErrors bool

	// IsPermanent reports whether an error of the operation is permanent,
	// for CacheErrors. nil means [DefaultIsPermanent]: errors marked with
	// [Permanent] and the service's final answers (bulwark.ErrFinal).
	IsPermanent func(error) bool

	// OnEvent, if not nil, receives idempotency:replayed (a stored or
	// shared result answered the call), idempotency:conflict (a
	// duplicate met a call holding the key, or the key came with another
	// payload) and idempotency:forgotten (Forget deleted a result) events,
	// with Key set. It is called synchronously, never
	// under a lock. nil means no events, and none are built.
	OnEvent bulwark.Listener
}

// DuplicatePolicy says what a duplicate does when the first call for its
// key runs in the same process.
type DuplicatePolicy uint8

const (
	// DuplicateWait waits for the running call and shares its result:
	// value or error. A waiter whose context ends returns its context's
	// error; the running call and the other waiters go on.
	DuplicateWait DuplicatePolicy = iota
	// DuplicateReject returns ErrInProgress at once.
	DuplicateReject
)

// String returns "wait" or "reject".
func (p DuplicatePolicy) String() string {
	switch p {
	case DuplicateWait:
		return "wait"
	case DuplicateReject:
		return "reject"
	}
	return "DuplicatePolicy(" + strconv.Itoa(int(p)) + ")"
}

// Manager runs operations at most once per key over a [Store]: see
// [Execute]. It holds no per-result-type state, so one Manager serves
// operations of every result type. A Manager is safe for concurrent use.
//
// Calls for the same key in this process meet in an in-process table of
// calls in flight (no goroutine per call), so that duplicates wait for
// the running call instead of polling the store; calls in other processes
// meet only in the store.
//
// While operations run, a Manager keeps one timer that extends their
// leases every Lease/3, in one round for all of them (see [BatchExtender]).
// It re-arms itself only while operations run: its
// last firing, at most Lease/3 after the last call returned, finds nothing
// to do and stops. Between firings no goroutine runs, but for one per
// call that a layer inside abandoned while its operation still runs (see
// [Execute]), which holds the claim until the operation ends. (In tests with
// testing/synctest, make the Manager inside the bubble that uses it, as
// its timer lives in the bubble that started it.)
type Manager struct {
	store       Store
	mem         *MemoryStore // store, if it is one: replays skip the claim
	ttl         time.Duration
	lease       time.Duration
	policy      DuplicatePolicy
	cacheErrors bool
	isPermanent func(error) bool
	onEvent     bulwark.Listener

	*inFlight // shared with the Managers made by Reconfigure
}

// inFlight is a Manager's state of the calls running in this process: the
// table of flights that duplicates wait on, the owner tokens of their
// claims and the renewal of their leases. Managers over the same store
// with the same lease share one (see [Manager.Reconfigure]).
type inFlight struct {
	id         string // random prefix of the owner tokens
	seed       maphash.Seed
	base       time.Time    // the clock: leases end at nanoseconds since base
	renewArmed atomic.Bool  // a renewal timer is pending or firing; rarely written
	lastRound  atomic.Int64 // claims extended by the last renewal round

	_       [64]byte // keep the fields above, read by every call, off the shards' lines
	flights [flightShards]flightShard
}

// New returns a Manager over store, configured by cfg. A nil store means
// a new [MemoryStore] with the default MemoryConfig. New returns an error
// wrapping [ErrInvalid] and naming the field if cfg is invalid, or if
// store is a nil pointer of a Store type.
func New(store Store, cfg Config) (*Manager, error) {
	if cfg.TTL < 0 {
		return nil, fmt.Errorf("%w: Config.TTL must not be negative, got %v", ErrInvalid, cfg.TTL)
	}
	if cfg.Lease < 0 {
		return nil, fmt.Errorf("%w: Config.Lease must not be negative, got %v", ErrInvalid, cfg.Lease)
	}
	if cfg.DuplicatePolicy > DuplicateReject {
		return nil, fmt.Errorf("%w: Config.DuplicatePolicy %v is not DuplicateWait or DuplicateReject", ErrInvalid, cfg.DuplicatePolicy)
	}
	if store != nil {
		if v := reflect.ValueOf(store); v.Kind() == reflect.Pointer && v.IsNil() {
			return nil, fmt.Errorf("%w: nil store (%T)", ErrInvalid, store)
		}
	}
	if store == nil {
		mem, err := NewMemoryStore(MemoryConfig{})
		if err != nil {
			return nil, err
		}
		store = mem
	}
	m := &Manager{
		store:       store,
		ttl:         cfg.TTL,
		lease:       cfg.Lease,
		policy:      cfg.DuplicatePolicy,
		cacheErrors: cfg.CacheErrors,
		isPermanent: cfg.IsPermanent,
		onEvent:     cfg.OnEvent,
		inFlight:    &inFlight{id: uuid.NewString(), seed: maphash.MakeSeed(), base: time.Now()},
	}
	m.mem, _ = store.(*MemoryStore)
	if m.ttl == 0 {
		m.ttl = DefaultTTL
	}
	if m.lease == 0 {
		m.lease = DefaultLease
	}
	if m.isPermanent == nil {
		m.isPermanent = DefaultIsPermanent
	}
	return m, nil
}

// Reconfigure returns a new Manager over store, configured by cfg, as
// [New] does. When store is m's own store (the same value; a nil store
// means m's) and the lease is unchanged, the new Manager shares m's calls
// in flight: a duplicate on either Manager of a call running on the other
// waits for it and shares its result (or gets ErrInProgress under
// DuplicateReject), as on one Manager, and one renewal timer extends the
// leases of both Managers' calls. Otherwise the new Manager has its own
// table, and a duplicate of a call running on m meets it only in the
// store (ErrInProgress, as from another process): never a second
// execution. m is unchanged and may still be used. A nil m makes
// Reconfigure New; the errors are New's.
//
// Reconfigure is what a pipeline's Configure uses, so that reconfiguring
// an executor does not cut its running calls off from their duplicates.
// It is safe for concurrent use with m's calls.
func (m *Manager) Reconfigure(store Store, cfg Config) (*Manager, error) {
	if m != nil && store == nil {
		store = m.store
	}
	n, err := New(store, cfg)
	if err != nil || m == nil {
		return n, err
	}
	if n.lease == m.lease && sameStore(n.store, m.store) {
		n.inFlight = m.inFlight
	}
	return n, nil
}

// sameStore reports whether a and b are the same store value (one whose
// type cannot be compared never is).
func sameStore(a, b Store) bool {
	return reflect.TypeOf(a) == reflect.TypeOf(b) && reflect.ValueOf(a).Comparable() && a == b
}

// owner returns the owner token of the seq-th claim led from flight shard
// i: unique to one claim, as it starts with this Manager's random id.
func (m *Manager) owner(i, seq uint64) string {
	var buf [64]byte // a UUID, '/', two digits, '.', twenty digits
	b := append(buf[:0], m.id...)
	b = append(b, '/')
	b = strconv.AppendUint(b, i, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, seq, 10)
	return string(b)
}

// now reads the Manager's clock: monotonic nanoseconds since it was made.
func (m *Manager) now() int64 { return int64(time.Since(m.base)) }

func (m *Manager) emit(ctx context.Context, kind bulwark.EventKind, key string, err error) {
	if m.onEvent != nil {
		m.onEvent(bulwark.Event{Kind: kind, Time: time.Now(), Key: key, Err: err, Context: ctx})
	}
}

// Forget deletes the stored result of key, so that the next call with the
// key runs the operation again. Use it when the operation's effects were
// undone (a workflow rolled back the step): replaying a result that names
// something deleted would be wrong. A key whose operation is still in
// progress is left alone, and so is a key without a stored result;
// forgotten reports whether a result was deleted (and then an
// idempotency:forgotten event is emitted). A store failure is returned
// wrapped in [ErrStore]; a nil Manager or context, or an empty key, is an
// error wrapping [ErrInvalid]. Forget is safe for concurrent use.
func (m *Manager) Forget(ctx context.Context, key string) (forgotten bool, err error) {
	switch {
	case m == nil:
		return false, errNilManager
	case key == "":
		return false, errEmptyKey
	case ctx == nil:
		return false, errNilContext
	}
	forgotten, err = m.store.Forget(ctx, key)
	if err != nil {
		return false, fmt.Errorf("%w: forget %q: %w", ErrStore, key, err)
	}
	if forgotten {
		m.emit(ctx, bulwark.IdempotencyForgotten, key, nil)
	}
	return forgotten, nil
}
