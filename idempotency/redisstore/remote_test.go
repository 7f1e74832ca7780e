package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/idempotency/redisstore"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
	"github.com/bulwark-go/bulwark/rollback"
)

// The workflow tests' remote services (Notion, Trello, Slack) live in
// Redis, under the test's prefix, outside bulwark: so that several
// processes share them, and their side-effect log counts what really
// happened. Like Stripe's or Notion's API, they honour idempotency keys:
// a request with a key they have seen gets the first answer again, even
// if what it created was deleted since.

// services is the remote side of a workflow, kept in Redis under prefix.
type services struct {
	c      *redis.Client
	p      string
	create *redis.Script
	delete *redis.Script
}

// Keys of the remote side, under the test's prefix.
func (s *services) byKey() string  { return s.p + "remote:bykey" }  // hash: remote key → id
func (s *services) next() string   { return s.p + "remote:next" }   // counter of ids
func (s *services) exists() string { return s.p + "remote:exists" } // set of live ids
func (s *services) log() string    { return s.p + "remote:log" }    // list: "create id", "delete id"
func (s *services) keys() string   { return s.p + "remote:keys" }   // list: "kind key" of every create request

func newServices(c *redis.Client, prefix string) *services {
	return &services{
		c: c, p: prefix,
		create: redis.NewScript(`
redis.call('RPUSH', KEYS[5], ARGV[2] .. ' ' .. ARGV[1])
local id = redis.call('HGET', KEYS[1], ARGV[1])
if id then return id end
id = ARGV[2] .. '-' .. redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], id)
redis.call('SADD', KEYS[3], id)
redis.call('RPUSH', KEYS[4], 'create ' .. id)
return id`),
		delete: redis.NewScript(`
redis.call('RPUSH', KEYS[2], 'delete ' .. ARGV[1])
return redis.call('SREM', KEYS[1], ARGV[1])`),
	}
}

// Create creates a kind (page, card, message) under the idempotency key of
// the call it runs in, as the remote's Idempotency-Key.
func (s *services) Create(ctx context.Context, kind string) (string, error) {
	key, _, ok := idempotency.KeyFrom(ctx)
	if !ok {
		return "", bulwark.Final(errors.New("no idempotency key in the call"))
	}
	return s.create.Run(ctx, s.c, []string{s.byKey(), s.next(), s.exists(), s.log(), s.keys()}, key, kind).Text()
}

// Delete deletes id. Every delete is logged, so that undoing twice shows.
func (s *services) Delete(ctx context.Context, id string) error {
	n, err := s.delete.Run(ctx, s.c, []string{s.exists(), s.log()}, id).Int()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", id, rollback.ErrNoEffect)
	}
	return nil
}

// Log returns the side-effect log: "create id" and "delete id", in order.
func (s *services) Log(t *testing.T) []string {
	t.Helper()
	l, err := s.c.LRange(t.Context(), s.log(), 0, -1).Result()
	require.NoError(t, err)
	return l
}

// Keys returns the remote key of every create request of kind, in order.
func (s *services) Keys(t *testing.T, kind string) []string {
	t.Helper()
	l, err := s.c.LRange(t.Context(), s.keys(), 0, -1).Result()
	require.NoError(t, err)
	var out []string
	for _, e := range l {
		if k, key, _ := strings.Cut(e, " "); k == kind {
			out = append(out, key)
		}
	}
	return out
}

// Live returns the ids that exist.
func (s *services) Live(t *testing.T) []string {
	t.Helper()
	l, err := s.c.SMembers(t.Context(), s.exists()).Result()
	require.NoError(t, err)
	return l
}

// workflowStep is one step of the orchestrator's plan: an executor and
// the kind of thing it creates there.
type workflowStep struct{ exec, kind string }

var plan = [...]workflowStep{{"notion", "page"}, {"trello", "card"}, {"slack", "message"}}

// errArchived is step 3's permanent failure.
var errArchived = bulwark.Final(errors.New("slack: channel archived"))

// stepKey returns the base idempotency key of step st.
func stepKey(st workflowStep, reason string) string {
	k, err := idempotency.Key(st.exec, "create-"+st.kind, reason)
	if err != nil {
		panic(err)
	}
	return k
}

// process is one process of the orchestrator: a Stack whose idempotency
// store is on Redis, under the prefix every process of the test shares.
type process struct {
	stack *pipeline.Stack
	store *redisstore.Store
	svc   *services
}

// newProcess starts a process over the Redis at addr, with a client of
// its own. Dropping it without a rollback is a crash.
func newProcess(t *testing.T, addr, prefix string) *process {
	t.Helper()
	store, client := newStore(t, addr, redisstore.Config{Prefix: prefix})
	p, err := newProcessOn(store, client, prefix, 0)
	require.NoError(t, err)
	return p
}

// newProcessOn returns a process whose idempotency store is store, and
// whose services are under prefix on client's server. Its claims hold
// their keys for lease without news (0: the default, a minute).
func newProcessOn(store *redisstore.Store, client *redis.Client, prefix string, lease time.Duration) (*process, error) {
	cfg := pipeline.Reliable()
	cfg.Idempotency.Store = store
	cfg.Idempotency.Lease = lease
	cfg.Retry = &retry.Config{NoWait: true}
	s, err := pipeline.New(cfg)
	if err != nil {
		return nil, err
	}
	return &process{stack: s, store: store, svc: newServices(client, prefix)}, nil
}

// step runs step i of the plan: a keyed create with its delete as the
// call's Undo. If fail, the service refuses the request permanently.
func (p *process) step(ctx context.Context, i int, reason string, fail bool) pipeline.Result[string] {
	return p.stepWith(ctx, i, reason, func(ctx context.Context) (string, error) {
		if fail {
			return "", errArchived
		}
		return p.svc.Create(ctx, plan[i].kind)
	})
}

// stepWith runs step i of the plan with fn as its operation.
func (p *process) stepWith(ctx context.Context, i int, reason string, fn func(context.Context) (string, error)) pipeline.Result[string] {
	st := plan[i]
	return pipeline.Execute(ctx, p.stack, st.exec, fn, pipeline.IdempotencyKeyParts("create-"+st.kind, reason),
		pipeline.Undo("delete "+st.kind, p.svc.Delete))
}

// crash runs the first n steps outside any rollback scope, as a process
// that dies after them does: nothing rolls them back.
func (p *process) crash(ctx context.Context, n int, reason string) ([]pipeline.Result[string], error) {
	var rs []pipeline.Result[string]
	for i := range n {
		r := p.step(ctx, i, reason, false)
		rs = append(rs, r)
		if r.Err != nil {
			return rs, r.Err
		}
	}
	return rs, nil
}

// run runs the whole plan in a workflow scope (rollback.Do, or Begin if
// begin), failing step failAt (-1: none).
func (p *process) run(ctx context.Context, reason string, failAt int, begin bool, opts ...rollback.Option) ([]pipeline.Result[string], error) {
	var rs []pipeline.Result[string]
	steps := func(ctx context.Context) (int, error) {
		for i := range plan {
			r := p.step(ctx, i, reason, i == failAt)
			rs = append(rs, r)
			if r.Err != nil {
				return 0, r.Err
			}
		}
		return 0, nil
	}
	if !begin {
		_, err := rollback.Do(ctx, steps, opts...)
		return rs, err
	}
	ctx, scope, err := rollback.Begin(ctx, opts...)
	if err != nil {
		return nil, err
	}
	if _, err := steps(ctx); err != nil {
		return rs, errors.Join(err, scope.Rollback(err))
	}
	return rs, scope.Commit()
}

// events collects events, safe for concurrent use.
type events struct {
	mu sync.Mutex
	es []bulwark.Event
}

func (r *events) listen(e bulwark.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.es = append(r.es, e)
}

func (r *events) all() []bulwark.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bulwark.Event(nil), r.es...)
}

func (r *events) count(kind bulwark.EventKind) int {
	n := 0
	for _, e := range r.all() {
		if e.Kind == kind {
			n++
		}
	}
	return n
}
