package rollback

import "context"

// Registered returns how many compensations the rollback scope carried by
// ctx has gained since it was opened: those registered with it
// ([OnRollback], a [Compensation]'s OnRollback or Before, a [Saga] step's
// Undo) and those handed to it by nested scopes that committed. Guards
// ([OnRollbackGuard], a [Guard]) do not count, and the count never goes
// down: compensations that ran, were discarded or were handed over stay
// counted (it wraps around after 2³² registrations: compare readings for
// equality, not order).
//
// Compare two readings to learn whether code run in between registered a
// compensation with the scope: the pipeline package reads it before and
// after a keyed call of a workflow, to forget the call's idempotency key
// at rollback only when something undoes the call. The difference also
// counts what other goroutines registered with the same scope meanwhile.
//
// Registered returns 0 when ctx carries no scope. It allocates nothing
// and is safe for concurrent use.
func Registered(ctx context.Context) int64 {
	s, _ := ctx.Value(scopeKey{}).(*Scope)
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(s.gained)
}
