package sqlitejournal_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/rollback"
	"github.com/bulwark-go/bulwark/rollback/sqlitejournal"
)

// pages is the remote service of the forgetting test: pages created under
// a remote idempotency key (a repeated key gets the same page back) and
// deleted by the workflow's compensation.
type pages struct {
	mu      sync.Mutex
	byKey   map[string]string
	exists  map[string]bool
	created int
	fail    atomic.Int32 // the next deletes that fail
}

func (p *pages) create(ctx context.Context) (string, error) {
	key, _, ok := idempotency.KeyFrom(ctx)
	if !ok {
		return "", errors.New("no key")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if id, ok := p.byKey[key]; ok {
		return id, nil
	}
	p.created++
	id := fmt.Sprint("page-", p.created)
	p.byKey[key], p.exists[id] = id, true
	return id, nil
}

// delete deletes the page created under the remote key, if any.
func (p *pages) delete(_ context.Context, key string) error {
	if p.fail.Add(-1) >= 0 {
		return rollback.Permanent(errors.New("503"))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	id := p.byKey[key]
	if !p.exists[id] {
		return rollback.ErrNoEffect // never created, or deleted already
	}
	delete(p.exists, id)
	return nil
}

// process is one process of the test: a Stack over the shared idempotency
// store, its own handle on the journal file, and its Registry.
type process struct {
	stack *pipeline.Stack
	j     *sqlitejournal.Journal
	reg   *rollback.Registry
	del   rollback.Compensation[string]
}

func newProcess(t *testing.T, db string, store idempotency.Store, p *pages) *process {
	t.Helper()
	cfg := pipeline.Reliable()
	cfg.Idempotency.Store = store
	s, err := pipeline.New(cfg)
	require.NoError(t, err)
	j, err := sqlitejournal.Open(db, sqlitejournal.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, j.Close()) })
	pr := &process{stack: s, j: j, reg: rollback.NewRegistry()}
	pr.del, err = rollback.Register(pr.reg, "delete page", p.delete)
	require.NoError(t, err)
	require.NoError(t, s.RegisterForgetting(pr.reg))
	return pr
}

// step is a keyed call creating a page, its deletion (by the remote key)
// journaled before the remote call and confirmed after.
func (pr *process) step(ctx context.Context, p *pages, key string) (pipeline.Result[string], error) {
	r := pipeline.Execute(ctx, pr.stack, "notion", func(ctx context.Context) (string, error) {
		remoteKey, _, _ := idempotency.KeyFrom(ctx)
		pend, err := pr.del.Before(ctx, remoteKey)
		if err != nil {
			return "", err
		}
		id, err := p.create(ctx)
		if err != nil {
			return "", err
		}
		return id, pend.Confirm(ctx)
	}, pipeline.IdempotencyKey(key))
	return r, r.Err
}

// The keys of a journaled workflow's steps are forgotten by the
// recoverer that undid them, through the SQLite journal: after the owner
// "dies" (its workflow is abandoned; the recoverer is another Stack over
// the same idempotency store, with its own handle on the journal file),
// rerunning the steps executes the undone ones again, keeps the key of a
// step whose undo failed until a recovery undoes it, and keeps the key of
// a step that only replayed an earlier, committed result.
func TestRecoveryForgetsKeys(t *testing.T) {
	db := filepath.Join(t.TempDir(), "journal.db")
	store, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
	require.NoError(t, err)
	p := &pages{byKey: map[string]string{}, exists: map[string]bool{}}
	owner := newProcess(t, db, store, p)
	rec := newProcess(t, db, store, p)
	const lease = 100 * time.Millisecond
	cfg := rollback.Config{Journal: owner.j, Registry: owner.reg, Owner: "owner", Lease: lease}

	// "kept" is created by a committed workflow: its page stays.
	_, err = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		_, err := owner.step(ctx, p, "kept")
		return 0, err
	}, rollback.WithConfig(cfg))
	require.NoError(t, err)

	// The owner runs four steps, the second replaying "kept", and dies.
	ctx, _, err := rollback.Begin(t.Context(), rollback.WithConfig(cfg))
	require.NoError(t, err)
	for _, key := range []string{"a", "kept", "b", "c"} {
		r, err := owner.step(ctx, p, key)
		require.NoError(t, err, key)
		assert.Equal(t, key == "kept", r.Replayed, key)
	}
	require.Len(t, p.exists, 4)

	p.fail.Store(1) // c's delete (the newest) fails at the first recovery
	recoverAll := func() rollback.RecoveredWorkflow {
		time.Sleep(lease + lease/2)
		rep, err := rollback.Recover(t.Context(), rec.j, rec.reg, rollback.WithConfig(rollback.Config{Owner: "recoverer", Lease: lease, Timeout: lease / 2}))
		require.NoError(t, err)
		require.Len(t, rep.Workflows, 1)
		return rep.Workflows[0]
	}
	w := recoverAll()
	require.Len(t, w.Failures, 1)
	assert.Equal(t, []string{pipeline.ForgetGuard}, w.Held, "c's key is held")
	assert.Equal(t, map[string]bool{"page-1": true, "page-4": true}, p.exists, "kept's page and c's stay")

	rerun := func(key string) pipeline.Result[string] {
		r, err := rec.step(t.Context(), p, key)
		require.NoError(t, err)
		return r
	}
	assert.True(t, rerun("kept").Replayed, "kept's page exists: replayed")
	assert.True(t, rerun("c").Replayed, "c's page exists: replayed")
	for _, key := range []string{"a", "b"} {
		r := rerun(key)
		assert.False(t, r.Replayed, "%s was undone: executed again", key)
	}

	w = recoverAll()
	assert.Equal(t, []string{"delete page"}, w.Compensated)
	assert.True(t, w.Finished)
	assert.False(t, rerun("c").Replayed, "undone by the second recovery: executed again")
	var left int
	require.NoError(t, rec.j.DB().QueryRow(`SELECT count(*) FROM bulwark_workflows`).Scan(&left))
	assert.Zero(t, left)
}
