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
	by map[any]*Scope // token → the scope that marked it
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
// register runs on the caller's goroutine while the workflow's marks are
// held, so that concurrent calls with an equal token register once: it
// must not call Once with a context of the same workflow (that call
// would wait forever), and should only register (with [OnRollback], a
// [Compensation]...).
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
		m = &marks{by: make(map[any]*Scope)}
		root.marks = m
	}
	root.mu.Unlock()

	m.mu.Lock()
	defer m.mu.Unlock()
	if h := m.by[token]; h != nil && h.stands() {
		return false, nil
	}
	s.mu.Lock()
	open := s.state == scopeOpen
	s.mu.Unlock()
	if !open {
		return false, ErrScopeEnded
	}
	if err := register(); err != nil {
		return true, err
	}
	m.by[token] = s
	return true, nil
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
