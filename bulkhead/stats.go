package bulkhead

// Stats is a snapshot of a bulkhead's counters. The totals count from the
// bulkhead's creation.
type Stats struct {
	// MaxConcurrent and MaxWaiting are the configured limits (after
	// defaults).
	MaxConcurrent, MaxWaiting int
	// InFlight is the number of slots taken now.
	InFlight int
	// Waiting is the number of calls in the queue now.
	Waiting int
	// Admitted is the number of calls that got a slot, at once or after
	// waiting.
	Admitted int64
	// Queued is the number of calls that joined the queue, whatever
	// became of them.
	Queued int64
	// Rejected is the number of calls refused with [ErrFull].
	Rejected int64
	// Canceled is the number of queued calls whose context ended before
	// they got a slot.
	Canceled int64
}

// Stats returns a snapshot of b's counters (zero for a nil bulkhead). The
// fields are read one by one, so under load they may be off by the calls
// in progress. Safe for concurrent use.
func (b *Bulkhead) Stats() Stats {
	if b == nil {
		return Stats{}
	}
	s := b.state.Load()
	return Stats{
		MaxConcurrent: int(b.set.maxConcurrent),
		MaxWaiting:    int(b.set.maxWaiting),
		InFlight:      int(s & inFlightMask),
		Waiting:       int(s >> 32),
		Admitted:      b.admitted.Load(),
		Queued:        b.queued.Load(),
		Rejected:      b.rejected.Load(),
		Canceled:      b.canceled.Load(),
	}
}
