package rollback

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
)

// Registry maps names to compensation handlers, so that a compensation
// recorded in a [Journal] by one process can be run by another: a closure
// cannot be persisted, a handler name and JSON arguments can. Register
// every handler once per process, at start-up, with [Register], in the
// processes that run workflows and in those that recover them.
//
// The zero Registry is empty and ready to use. A Registry is safe for
// concurrent use. It holds one entry per registered name, and nothing
// else.
type Registry struct {
	mu       sync.RWMutex
	handlers map[string]handler
}

// handler decodes JSON arguments and runs a registered compensation.
type handler func(ctx context.Context, args []byte) error

// NewRegistry returns an empty Registry; new(Registry) is the same.
func NewRegistry() *Registry { return new(Registry) }

// Compensation is a registered, durable compensation taking arguments of
// type A, as returned by [Register]. Use it inside a rollback scope, with
// [Compensation.Before] around a step or [Compensation.OnRollback] after
// one. The zero Compensation is not usable. A Compensation is a small
// value, safe to copy and for concurrent use.
type Compensation[A any] struct {
	name string
	reg  *Registry
	fn   func(ctx context.Context, args A) error
}

// Name returns the name the compensation was registered under.
func (c Compensation[A]) Name() string { return c.name }

// Register adds the compensation fn to r under name and returns it as a
// typed [Compensation]. fn receives its arguments decoded from JSON, as
// encoding/json decodes into an A: A must survive a JSON round trip (use
// exported fields; no funcs, channels or cycles).
//
// fn must tolerate an effect that never happened: a compensation recorded
// before its step (see [Compensation.Before]) runs at recovery even if the
// process died before the step took effect. Such a handler checks and
// returns [ErrNoEffect] when there is nothing to undo. It must also be
// idempotent: a handler interrupted by a crash runs again.
//
// Register returns an error wrapping [ErrInvalid] naming the argument
// when r or fn is nil, name is empty or starts with [GuardPrefix], or
// name is already registered in r.
// It is safe for concurrent use.
func Register[A any](r *Registry, name string, fn func(ctx context.Context, args A) error) (Compensation[A], error) {
	switch {
	case r == nil:
		return Compensation[A]{}, fmt.Errorf("%w Register registry: nil", ErrInvalid)
	case name == "":
		return Compensation[A]{}, fmt.Errorf("%w Register name: empty", ErrInvalid)
	case fn == nil:
		return Compensation[A]{}, fmt.Errorf("%w Register fn: nil (for %q)", ErrInvalid, name)
	case strings.HasPrefix(name, GuardPrefix):
		return Compensation[A]{}, fmt.Errorf("%w Register name: %q starts with %q, reserved for guards (see RegisterGuard)", ErrInvalid, name, GuardPrefix)
	}
	if err := r.add("Register", name, decoded(name, fn)); err != nil {
		return Compensation[A]{}, err
	}
	return Compensation[A]{name: name, reg: r, fn: fn}, nil
}

// decoded returns the handler that decodes the JSON arguments of the
// handler name into an A and calls fn.
func decoded[A any](name string, fn func(ctx context.Context, args A) error) handler {
	return func(ctx context.Context, raw []byte) error {
		var args A
		if err := json.Unmarshal(raw, &args); err != nil {
			return Permanent(fmt.Errorf("rollback: handler %q: decoding its arguments: %w", name, err))
		}
		return fn(ctx, args)
	}
}

// add registers h under key, refusing a key already registered; caller
// names the function in the error.
func (r *Registry) add(caller, key string, h handler) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.handlers[key]; dup {
		return fmt.Errorf("%w %s name: %q already registered", ErrInvalid, caller, key)
	}
	if r.handlers == nil {
		r.handlers = make(map[string]handler)
	}
	r.handlers[key] = h
	return nil
}

// lookup returns the handler registered under name, nil if none.
func (r *Registry) lookup(name string) handler {
	if r == nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.handlers[name]
}

// Has reports whether a handler is registered under name. It is safe for
// concurrent use, and false on a nil Registry.
func (r *Registry) Has(name string) bool { return r.lookup(name) != nil }
