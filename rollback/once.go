package rollback

import (
	"context"
	"fmt"
	"reflect"
	"sync"
)

// marks holds the tokens of [Once] for the scopes of one workflow: the
// outermost scope and those nested in it.
type marks struct {
	mu sync.Mutex
	by map[any]*mark
}

// mark is one token's mark: pending while its registration runs (s is
// nil; done closes when it ends), then the scope that made it.
type mark struct {
	s    *Scope
	done chan struct{}
}

// Once runs register, which registers the compensations of an effect,
// and marks token in the workflow of the rollback scope carried by ctx,
// unless an earlier mark with an equal token stands: then it runs
// nothing. It reports whether register ran, and returns its error. The
// mark is made only when register returns nil: a registration that
// failed (the scope is full, say) leaves token free, so that the next
// call registers. It lets code that registers compensations for an
// effect that may be reported more than once within one workflow (a
// keyed pipeline call replayed by a retry loop of the workflow itself)
// register them once.
//
// The workflow is the outermost scope of ctx and every scope nested in
// it. A mark stands while the scope that made it is open, or has
// committed into a scope where it stands (its compensations were handed
// over), and also once a Saga's pivot discarded them (the effect is past
// the point of no return). It is released when that scope rolls back:
// its compensations ran, so the effect was undone (or could not be: its
// key, if any, was kept) and the next call registers anew.
//
// register runs on the caller's goroutine, under no lock. While it runs
// the token is pending: a concurrent call with an equal token waits for
// its outcome (or for its own ctx to end, returning false and
// context.Cause(ctx)), then registers nothing if it succeeded and in its
// stead if it failed; so register must not call Once with an equal token
// in the same workflow (that call would wait for itself). A panic in
// register leaves the token free and propagates.
//
// Once returns false and an error, runs nothing and marks nothing,
// wrapping [ErrInvalid] when token is nil or not comparable or register
// is nil, [ErrNoScope] when ctx carries no scope, and [ErrScopeEnded]
// when that scope has ended. A workflow keeps its marks, one per distinct
// token, until it ends. Once is safe for concurrent use.
func Once(ctx context.Context, token any, register func() error) (bool, error) {
	if token == nil || !reflect.ValueOf(token).Comparable() {
		return false, fmt.Errorf("%w Once token: %T (must be comparable and not nil)", ErrInvalid, token)
	}
	if register == nil {
		return false, fmt.Errorf("%w Once register: nil", ErrInvalid)
	}
	s, _ := ctx.Value(scopeKey{}).(*Scope)
	if s == nil {
		return false, ErrNoScope
	}
	root := s
	for p := root.parentScope(); p != nil; p = root.parentScope() {
		root = p
	}
	root.mu.Lock()
	m := root.marks
	if m == nil {
		m = &marks{by: make(map[any]*mark)}
		root.marks = m
	}
	root.mu.Unlock()

	m.mu.Lock()
	for {
		k := m.by[token]
		if k == nil {
			break
		}
		if k.s == nil { // pending: wait for its registration's outcome
			m.mu.Unlock()
			select {
			case <-k.done:
			case <-ctx.Done():
				return false, context.Cause(ctx)
			}
			m.mu.Lock()
			continue
		}
		if k.s.stands() {
			m.mu.Unlock()
			return false, nil
		}
		break
	}
	s.mu.Lock()
	open := s.state == scopeOpen
	s.mu.Unlock()
	if !open {
		m.mu.Unlock()
		return false, ErrScopeEnded
	}
	k := &mark{done: make(chan struct{})}
	m.by[token] = k
	m.mu.Unlock()

	ok := false
	defer func() {
		m.mu.Lock()
		if ok {
			k.s = s
		} else if m.by[token] == k {
			delete(m.by, token)
		}
		close(k.done)
		m.mu.Unlock()
	}()
	err := register()
	ok = err == nil
	return true, err
}

// stands reports whether a mark made by s stands: s is open, or
// committed into a scope where it stands.
func (s *Scope) stands() bool {
	for s != nil {
		s.mu.Lock()
		state := s.state
		s.mu.Unlock()
		switch state {
		case scopeOpen:
			return true
		case scopeRolledBack:
			return false
		}
		s = s.parentScope() // committed: handed over, or the workflow ended
	}
	return false
}
