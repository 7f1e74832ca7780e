package breaker

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// Group holds one breaker per executor (remote service), each made on
// first use from the group's defaults or from the Config given to
// [Group.Configure] for that executor.
//
// The zero value is a group whose defaults are Config{} (the package
// defaults), ready to use; [NewGroup] sets other defaults. A Group must not
// be copied after first use. All methods are safe for concurrent use;
// [Group.Get] on an existing executor takes no lock.
//
// Memory: a Group holds exactly one breaker per distinct name passed to
// Get or Configure, and never drops one (a breaker's state must outlive
// any single call). It grows only through its caller's names, so name
// executors from a fixed set (the services a program calls), never from
// request data. A breaker costs about 2 KiB on two processors and up to
// about 9 KiB on sixteen or more (its striped counters); adding a name
// copies the name map, so adding n names costs O(n²) in total. Within a
// breaker everything is fixed-size: the failure run holds at most
// FailureThreshold times, the ratio window 10 buckets.
type Group struct {
	mu       sync.Mutex                          // serializes changes
	defaults *settings                           // nil: Config{}
	breakers atomic.Pointer[map[string]*Breaker] // copy on write
}

// NewGroup returns a group whose breakers are made from defaults unless
// configured otherwise. It returns a [*ConfigError] if defaults is invalid.
// defaults.OnEvent, defaults.OnSample and defaults.Logger are shared by
// every breaker made from the defaults; events carry the executor's name.
func NewGroup(defaults Config) (*Group, error) {
	s, err := newSettings(defaults)
	if err != nil {
		return nil, err
	}
	return &Group{defaults: s}, nil
}

// Get returns the breaker of the executor name, making it from the group's
// defaults if it does not exist yet. It never fails: the defaults were
// validated. Looking up an existing executor takes no lock and allocates
// nothing. On a nil *Group it returns nil, which [Do] and [Middleware]
// refuse with [ErrInvalid].
func (g *Group) Get(name string) *Breaker {
	if g == nil {
		return nil
	}
	if m := g.breakers.Load(); m != nil {
		if b, ok := (*m)[name]; ok {
			return b
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if b := g.lookupLocked(name); b != nil {
		return b
	}
	s := g.defaults
	if s == nil {
		s, _ = newSettings(Config{}) // the zero Config is always valid
		g.defaults = s
	}
	return g.addLocked(name, s)
}

// Configure gives the executor name its own Config, which replaces the
// group's defaults for it (fields are not merged: a zero field means the
// package default, as in [New]). It returns a [*ConfigError] naming the
// field if cfg is invalid, and then changes nothing.
//
// Before the executor's first use, Configure makes its breaker from cfg.
// After it, the breaker keeps its state, generation, statistics and probes
// in flight and applies cfg from its next decision on: the newest failures
// of the current run are kept up to the new FailureThreshold (a lower
// threshold trips on the next failure, not at once), an OPEN circuit's next
// attempt becomes the time it opened plus the new ResetTimeout, and the
// ratio window is kept if SamplingWindow did not change and started afresh
// otherwise. Calls in progress finish under the settings they started with.
//
// On a nil *Group, Configure returns an error wrapping [ErrInvalid].
func (g *Group) Configure(name string, cfg Config) error {
	if g == nil {
		return errNilGroup
	}
	s, err := newSettings(cfg)
	if err != nil {
		err.Name = name
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if b := g.lookupLocked(name); b != nil {
		b.reconfigure(s)
		return nil
	}
	g.addLocked(name, s)
	return nil
}

func (g *Group) lookupLocked(name string) *Breaker {
	if m := g.breakers.Load(); m != nil {
		return (*m)[name]
	}
	return nil
}

// addLocked makes the breaker of name and publishes a new map holding it.
func (g *Group) addLocked(name string, s *settings) *Breaker {
	b := newBreaker(name, s)
	next := make(map[string]*Breaker)
	if m := g.breakers.Load(); m != nil {
		maps.Copy(next, *m)
	}
	next[name] = b
	g.breakers.Store(&next)
	return b
}

// Names returns the names of the executors that have a breaker, sorted;
// none for a nil *Group.
func (g *Group) Names() []string {
	if g == nil {
		return nil
	}
	m := g.breakers.Load()
	if m == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(*m))
}

// Stats returns a snapshot of every breaker's statistics, by executor name;
// an empty map for a nil *Group.
func (g *Group) Stats() map[string]Stats {
	if g == nil {
		return map[string]Stats{}
	}
	m := g.breakers.Load()
	if m == nil {
		return map[string]Stats{}
	}
	out := make(map[string]Stats, len(*m))
	for name, b := range *m {
		out[name] = b.Stats()
	}
	return out
}

// Summary returns the group's statistics as an aligned text table, one row
// per executor in name order: state, success rate (successes among the
// calls that counted either way), calls (Total), failures, rejections,
// times opened, and when the next probe is let through while OPEN.
func (g *Group) Summary() string {
	names := g.Names()
	now := time.Now()
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EXECUTOR\tSTATE\tSUCCESS RATE\tCALLS\tFAILURES\tREJECTIONS\tOPENED\tNEXT ATTEMPT")
	for _, name := range names {
		s := g.Get(name).Stats()
		rate := "-"
		if n := s.Successes + s.Failures; n > 0 {
			rate = fmt.Sprintf("%.1f%%", 100*float64(s.Successes)/float64(n))
		}
		next := "-"
		switch {
		case s.Forced:
			next = "forced open"
		case s.State == Open && !s.NextAttempt.After(now):
			next = "due"
		case s.State == Open:
			d := s.NextAttempt.Sub(now)
			if d >= time.Second {
				d = d.Round(time.Second)
			}
			next = "in " + d.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n",
			name, s.State, rate, s.Total, s.Failures, s.Rejections, s.TimesOpened, next)
	}
	tw.Flush()
	return sb.String()
}
