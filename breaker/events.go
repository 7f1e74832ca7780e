package breaker

import (
	"context"
	"log/slog"
	"time"

	"github.com/bulwark-go/bulwark"
)

// notice is a state change to report once the mutex is released: the
// breaker collects it under the lock and delivers it after unlocking, so a
// listener or log handler may call back into the breaker.
type notice struct {
	tr    transition // no change: nothing to report
	seq   uint64     // the change's number: see bulwark.Event.Seq
	at    time.Time
	stats *Stats          // filled in only when someone listens
	s     *settings       // the listeners and the logger; set with a change
	ctx   context.Context // of the call that made the change; nil if none
}

// eventKinds maps the state entered to the kind of its event.
var eventKinds = [...]bulwark.EventKind{
	Closed:   bulwark.CircuitClosed,
	Open:     bulwark.CircuitOpened,
	HalfOpen: bulwark.CircuitHalfOpen,
}

// notify delivers n: the circuit event to the listeners, OnEvent then
// OnSample (with the statistics in Detail), and a log record to the
// logger. It must be called without the mutex held.
//
// Changes made on different goroutines at nearly the same time (a Reset
// racing a failure) are delivered by those goroutines and can reach the
// listener out of order; their Seq (and the log record's seq) gives the
// order they were made in. The breaker does not serialize delivery: that
// would have a caller wait for another goroutine's listener, or deliver
// its event on another goroutine, and a listener that changes the state
// (calls Reset) could deadlock.
//
// If the listener panics, the log record is not written and the panic
// goes on; the state change itself is complete.
func (b *Breaker) notify(n notice) {
	if !n.tr.changed() {
		return
	}
	from, to := n.tr.from.String(), n.tr.to.String()
	onEvent, onSample, logger := n.s.onEvent, n.s.onSample, n.s.logger
	if onEvent != nil || onSample != nil {
		ev := bulwark.Event{
			Kind:     eventKinds[n.tr.to],
			Executor: b.name,
			Time:     n.at,
			From:     from,
			To:       to,
			Seq:      n.seq,
			Detail:   *n.stats,
			Context:  n.ctx,
		}
		if onEvent != nil {
			onEvent(ev)
		}
		if onSample != nil {
			onSample(ev)
		}
	}
	if logger != nil {
		level, msg := slog.LevelInfo, "circuit breaker state changed"
		if n.tr.to == Open {
			level, msg = slog.LevelWarn, "circuit breaker opened"
		}
		attrs := []slog.Attr{
			slog.String("executor", b.name),
			slog.String("from", from),
			slog.String("to", to),
			slog.Int64("failures", n.stats.Failures),
			slog.Int64("consecutive_failures", n.stats.ConsecutiveFailures),
			slog.Int64("successes", n.stats.Successes),
			slog.Int64("rejections", n.stats.Rejections),
			slog.Int64("times_opened", n.stats.TimesOpened),
			slog.Uint64("seq", n.seq),
		}
		if !n.stats.NextAttempt.IsZero() {
			attrs = append(attrs, slog.Time("next_attempt", n.stats.NextAttempt))
		}
		ctx := n.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		logger.LogAttrs(ctx, level, msg, attrs...)
	}
}
