package bulwarkhttp

import (
	"errors"
	"maps"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/pipeline"
)

// chains holds, for each executor of stack that a request ran through,
// the executor's layers bound around attempt (pipeline.Middleware). A
// request without call options (no Idempotency-Key, no fallback copy to
// keep, retries allowed: the usual GET) runs through them instead of
// pipeline.Execute, which would make a call context and look up the
// executor and its chain for every request, and read the clock twice for
// a Duration the Transport does not use. The layers and what they do are
// the same: a Middleware without options honours what the request's
// context carries as Execute without options does, and follows the
// executor's new layers when it is configured anew.
//
// Bounded as the Stack's executors are: an executor is added only once a
// call through Execute showed that it exists. Requests read the map
// without a lock; an addition copies it (executors are added once each).
type chains struct {
	stack *pipeline.Stack
	funcs map[string]bulwark.Func[*answer]
}

// chainOf returns the bound chain of executor, or nil if there is none
// yet (or the Stack is not the one the chains were made for).
func (t *Transport) chainOf(executor string) bulwark.Func[*answer] {
	if c := t.chains.Load(); c != nil && c.stack == t.Stack {
		return c.funcs[executor]
	}
	return nil
}

// bindChain adds the chain of executor after a call through Execute
// ended with err, unless err says that the executor does not exist (or
// could not be made).
func (t *Transport) bindChain(executor string, err error) {
	if err != nil && (errors.Is(err, pipeline.ErrUnknownExecutor) || errors.Is(err, pipeline.ErrInvalid)) {
		return
	}
	t.chainsMu.Lock()
	defer t.chainsMu.Unlock()
	old := t.chains.Load()
	if old != nil && old.stack != t.Stack {
		old = nil
	}
	if old != nil && old.funcs[executor] != nil {
		return
	}
	next := &chains{stack: t.Stack, funcs: make(map[string]bulwark.Func[*answer], 1)}
	if old != nil {
		maps.Copy(next.funcs, old.funcs)
	}
	next.funcs[executor] = pipeline.Middleware[*answer](t.Stack, executor)(attempt)
	t.chains.Store(next)
}
