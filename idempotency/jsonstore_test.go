package idempotency_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/idempotency/storetest"
)

// jsonStore is a test Store that serializes, as a shared store (Redis)
// must: values are kept as JSON and handed back with a decoder, errors as
// their messages. Its clock is now, so that tests can drive it.
type jsonStore struct {
	now func() time.Time

	mu      sync.Mutex
	records map[string]jsonRecord
	gens    map[string]jsonGen // generations of forgotten keys, as a shared store keeps them
	fail    map[string]error   // op → error to return, for failure tests
	failN   map[string]int     // op → how many more calls fail with fail[op] (0: all)
	calls   map[string]int     // op → number of calls
}

// jsonGen is a key's generation, kept apart from its record.
type jsonGen struct {
	gen     uint64
	expires time.Time
}

type jsonRecord struct {
	gen       uint64
	state     idempotency.State
	owner, fp string
	expires   time.Time
	data      []byte
	typ       reflect.Type // of the value, checked on decode
	errMsg    string
	hasErr    bool
}

func newJSONStore(now func() time.Time) *jsonStore {
	if now == nil {
		now = time.Now
	}
	return &jsonStore{now: now, records: map[string]jsonRecord{}, gens: map[string]jsonGen{}, fail: map[string]error{}, failN: map[string]int{}, calls: map[string]int{}}
}

// failOn makes every call of op ("claim", "extend", "complete",
// "release", "get") return err; a nil err heals it.
func (s *jsonStore) failOn(op string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[op] = err
	delete(s.failN, op)
}

// failFirst makes the next n calls of op return err; later ones succeed.
func (s *jsonStore) failFirst(op string, n int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[op], s.failN[op] = err, n
}

// failing returns the error the current call of op must return, if any.
// The lock must be held.
func (s *jsonStore) failing(op string) error {
	err := s.fail[op]
	if err == nil {
		return nil
	}
	if n, limited := s.failN[op]; limited {
		if n <= 1 {
			delete(s.fail, op)
			delete(s.failN, op)
		} else {
			s.failN[op] = n - 1
		}
	}
	return err
}

// count returns how many times op was called.
func (s *jsonStore) count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

func (s *jsonStore) live(key string) (jsonRecord, bool) {
	r, ok := s.records[key]
	if !ok || !s.now().Before(r.expires) {
		delete(s.records, key)
		return jsonRecord{}, false
	}
	return r, true
}

func (s *jsonStore) record(r jsonRecord) idempotency.Record {
	rec := idempotency.Record{State: r.state, Owner: r.owner, Fingerprint: r.fp, Expires: r.expires, Generation: r.gen}
	if r.state == idempotency.Completed {
		if r.hasErr {
			if r.errMsg == "" {
				r.errMsg = "idempotency: stored error with no message"
			}
			rec.Err = errors.New(r.errMsg)
		} else {
			rec.Data = r.data
			rec.Decode = func(data []byte, v any) error {
				// A nil (r.typ nil) decodes only into an interface.
				if t := reflect.TypeOf(v).Elem(); t.Kind() != reflect.Interface && t != r.typ {
					return fmt.Errorf("stored value is of type %v", r.typ)
				}
				return json.Unmarshal(data, v)
			}
		}
	}
	return rec
}

// Like a store across a network, every operation fails once its context
// is done.

func (s *jsonStore) Claim(ctx context.Context, key, owner, fp string, lease time.Duration) (idempotency.Record, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["claim"]++
	if err := s.failing("claim"); err != nil {
		return idempotency.Record{}, false, err
	}
	if err := ctx.Err(); err != nil {
		return idempotency.Record{}, false, err
	}
	if r, ok := s.live(key); ok {
		return s.record(r), false, nil
	}
	r := jsonRecord{state: idempotency.InProgress, owner: owner, fp: fp, expires: s.now().Add(lease)}
	if g, ok := s.gens[key]; ok && s.now().Before(g.expires) {
		r.gen = g.gen
	}
	s.records[key] = r
	return s.record(r), true, nil
}

func (s *jsonStore) held(ctx context.Context, op, key, owner string) (jsonRecord, error) {
	s.calls[op]++
	if err := s.failing(op); err != nil {
		return jsonRecord{}, err
	}
	if err := ctx.Err(); err != nil {
		return jsonRecord{}, err
	}
	r, ok := s.live(key)
	if !ok || r.state != idempotency.InProgress || r.owner != owner {
		return jsonRecord{}, fmt.Errorf("%w: %s %q", idempotency.ErrLeaseLost, op, key)
	}
	return r, nil
}

func (s *jsonStore) Extend(ctx context.Context, key, owner string, lease time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.held(ctx, "extend", key, owner)
	if err != nil {
		return err
	}
	r.expires = s.now().Add(lease)
	s.records[key] = r
	return nil
}

func (s *jsonStore) Complete(ctx context.Context, key, owner string, out idempotency.Outcome, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.held(ctx, "complete", key, owner)
	if err != nil {
		return err
	}
	if out.Err != nil {
		r.hasErr, r.errMsg = true, out.Err.Error()
	} else if r.data, err = json.Marshal(out.Value); err != nil {
		return err
	} else {
		r.typ = reflect.TypeOf(out.Value)
	}
	r.state, r.expires = idempotency.Completed, s.now().Add(ttl)
	s.records[key] = r
	return nil
}

func (s *jsonStore) Release(ctx context.Context, key, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.held(ctx, "release", key, owner); err != nil {
		return err
	}
	delete(s.records, key)
	return nil
}

func (s *jsonStore) Get(ctx context.Context, key string) (idempotency.Record, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["get"]++
	if err := s.failing("get"); err != nil {
		return idempotency.Record{}, false, err
	}
	if err := ctx.Err(); err != nil {
		return idempotency.Record{}, false, err
	}
	r, ok := s.live(key)
	if !ok {
		return idempotency.Record{}, false, nil
	}
	return s.record(r), true, nil
}

func (s *jsonStore) Forget(ctx context.Context, key string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["forget"]++
	if err := s.failing("forget"); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	r, ok := s.live(key)
	if !ok || r.state != idempotency.Completed {
		return false, nil
	}
	g := s.gens[key]
	s.gens[key] = jsonGen{gen: r.gen + 1, expires: later(g.expires, r.expires)}
	delete(s.records, key)
	return true, nil
}

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestSerializingStoreContract(t *testing.T) {
	// RunWith with a clock of the store's own, moved by Advance, as a
	// Redis store's tests can do with a fake server; values round-trip
	// through JSON and come back through Record.Decode.
	clock := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	storetest.RunWith(t, func(t *testing.T) idempotency.Store { return newJSONStore(clock.now) },
		storetest.Options{Unit: time.Second, Advance: clock.advance})
}

func TestSerializingStoreContractInBubble(t *testing.T) {
	storetest.Run(t, func(t *testing.T) idempotency.Store { return newJSONStore(nil) })
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
