// Package dashboard is a live status page for a [pipeline.Stack]: an
// [http.Handler] that shows, per executor, the circuit state (in colour),
// success rate, calls, failures, rejections, mean latency, when the next
// probe is due, how many failed calls were served from the fallback cache
// and how many were idempotent replays, and its load (bulkhead slots in
// use, the calls the bulkhead and the rate limiter refused, a pause, the
// retries the budget refused), with the latest events below. The
// page updates itself without reloading, over a Server-Sent Events stream.
// It uses only the standard library and serves everything it needs
// itself: no CDN, no external script, style or font.
//
// Routes, relative to where the handler is mounted:
//
//	GET  /                     the HTML page
//	GET  /snapshot.json        a [Snapshot] as JSON
//	GET  /events               Server-Sent Events: a Snapshot (JSON) at once,
//	                           on every circuit state change, and every Interval
//	POST /actions/reset?executor=NAME        breaker.Reset      (Config.Actions only)
//	POST /actions/force-open?executor=NAME   breaker.ForceOpen  (Config.Actions only)
//
// To serve it under a prefix, strip the prefix and mount it on a pattern
// with a trailing slash (the page refers to its routes by relative URLs):
//
//	d, err := dashboard.Handler(stack)
//	if err != nil { ... }
//	defer d.Close()
//	mux.Handle("/status/", http.StripPrefix("/status", d))
//
// The page and its data are read-only views unless [Config.Actions] is
// set; the operator actions are POST only and refuse cross-origin browser
// requests (see [Config.Actions]). The page shows error messages and
// executor names: put it behind the same authentication as any other
// operator endpoint.
//
// Cost: the Dashboard subscribes to the Stack's events, so while it is
// open every layer builds its events (see pipeline.Stack.Subscribe); it
// keeps the latest Config.Events of them. Each open stream holds the
// goroutine of its own request, and nothing else, until the request ends
// or [Dashboard.Close] is called. Call Close before http.Server.Shutdown,
// which waits for open streams like any other active request.
//
// See docs/dashboard.md for the snapshot's JSON fields and the tests.
package dashboard

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/pipeline"
)

// ErrInvalid is wrapped by the error of [New] and [Handler] for a
// configuration they cannot use; the message names the field.
var ErrInvalid = errors.New("dashboard: invalid")

// Defaults for the zero fields of [Config].
const (
	// DefaultEvents is how many events a Dashboard keeps when
	// Config.Events is 0.
	DefaultEvents = 50
	// DefaultInterval is how often an open stream receives a snapshot
	// when Config.Interval is 0.
	DefaultInterval = time.Second
	// MinInterval is the shortest Config.Interval accepted.
	MinInterval = 10 * time.Millisecond
)

// Config configures a [Dashboard]. Only Stack is required; the zero values
// of the other fields mean the defaults documented on each.
type Config struct {
	// Stack is the pipeline the page shows. Required.
	Stack *pipeline.Stack

	// Actions adds the operator controls: a Reset and a Force open button
	// per executor with a breaker, and their routes
	// POST actions/reset?executor=NAME and
	// POST actions/force-open?executor=NAME. They accept POST only (405
	// otherwise) and refuse cross-origin browser requests with 403: the
	// Sec-Fetch-Site header, when present, must be same-origin (or none),
	// and otherwise the Origin header, when present, must name the
	// request's own host (net/http.CrossOriginProtection). Requests with
	// neither header come from non-browser clients (curl, scripts) and are
	// allowed. false (the default): the routes do not exist (404) and the
	// page shows no buttons.
	Actions bool

	// Events is how many of the latest events the Dashboard keeps and
	// shows, newest first. Every event of every layer is kept except
	// request:success, which only the counters show (under real traffic
	// successes would push every other event out). State changes
	// (circuit events, rollback:failed) are kept apart, so that a flood of
	// rejections cannot push the circuit:opened that explains it out: the
	// list holds every state change kept (up to Events) and the newest
	// other events in the room left. Memory is bounded by twice Events.
	// 0: [DefaultEvents]; negative is an error.
	Events int

	// Interval is how often an open stream (GET events) receives a fresh
	// snapshot, besides the one pushed at once on every circuit state
	// change. 0: [DefaultInterval]; negative or below [MinInterval] is an
	// error.
	Interval time.Duration
}

// Dashboard is the status page of one Stack: an http.Handler (see the
// package documentation for its routes). Make it with [New] or [Handler];
// it is safe for concurrent use. Call [Dashboard.Close] when done with it.
type Dashboard struct {
	stack    *pipeline.Stack
	actions  bool
	interval time.Duration
	ring     *ring
	csrf     *http.CrossOriginProtection
	cancel   func() // the Stack subscription

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every circuit state change
	closed  bool
	done    chan struct{} // closed by Close
	streams sync.WaitGroup
}

// New returns the Dashboard of cfg.Stack, subscribed to its events. It
// returns an error wrapping [ErrInvalid], naming the field, if cfg.Stack
// is nil, cfg.Events is negative, or cfg.Interval is negative or below
// [MinInterval].
func New(cfg Config) (*Dashboard, error) {
	if cfg.Stack == nil {
		return nil, fmt.Errorf("%w: Config.Stack is nil", ErrInvalid)
	}
	if cfg.Events < 0 {
		return nil, fmt.Errorf("%w: Config.Events is %d, negative (0 keeps %d)", ErrInvalid, cfg.Events, DefaultEvents)
	}
	if cfg.Interval < 0 || (cfg.Interval > 0 && cfg.Interval < MinInterval) {
		return nil, fmt.Errorf("%w: Config.Interval is %v, below %v (0 means %v)", ErrInvalid, cfg.Interval, MinInterval, DefaultInterval)
	}
	if cfg.Events == 0 {
		cfg.Events = DefaultEvents
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	d := &Dashboard{
		stack:    cfg.Stack,
		actions:  cfg.Actions,
		interval: cfg.Interval,
		ring:     newRing(cfg.Events),
		csrf:     http.NewCrossOriginProtection(),
		changed:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	d.cancel = cfg.Stack.Subscribe(d.listen)
	return d, nil
}

// Handler is shorthand for New(Config{Stack: stack}): the page with the
// default settings and no operator actions.
func Handler(stack *pipeline.Stack) (*Dashboard, error) {
	return New(Config{Stack: stack})
}

// Close unsubscribes the Dashboard from the Stack's events, ends every
// open stream and waits for their requests to return (a stream blocked
// writing to a client that stopped reading returns within its write
// timeout, 10 s, if the server supports write deadlines). After Close,
// every request is answered 503 Service Unavailable, and
// [Dashboard.Snapshot] still reports the Stack's statistics with the
// events seen before Close. Calling Close again does nothing. It is safe
// for concurrent use; do not call it from inside one of the Dashboard's
// own requests.
func (d *Dashboard) Close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	close(d.done)
	d.mu.Unlock()
	d.cancel()
	d.streams.Wait()
}

// listen receives the Stack's events: it keeps them and wakes the
// streams on a circuit state change.
func (d *Dashboard) listen(ev bulwark.Event) {
	switch ev.Kind {
	case bulwark.RequestSuccess:
		return
	case bulwark.CircuitOpened, bulwark.CircuitHalfOpen, bulwark.CircuitClosed:
		d.ring.add(ev)
		d.mu.Lock()
		close(d.changed)
		d.changed = make(chan struct{})
		d.mu.Unlock()
	default:
		d.ring.add(ev)
	}
}

// changes returns the channel closed at the next circuit state change.
func (d *Dashboard) changes() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.changed
}

// ServeHTTP serves the page, the snapshot, the event stream and, with
// Config.Actions, the operator actions; see the package documentation.
// Unknown paths get 404, a method a route does not accept 405 with an
// Allow header, and every request after Close 503.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		http.Error(w, "dashboard closed", http.StatusServiceUnavailable)
		return
	}
	switch path := r.URL.Path; {
	case path == "/":
		if allow(w, r, http.MethodGet, http.MethodHead) {
			d.servePage(w, r)
		}
	case path == "/snapshot.json":
		if allow(w, r, http.MethodGet, http.MethodHead) {
			d.serveSnapshot(w)
		}
	case path == "/events":
		if allow(w, r, http.MethodGet) {
			d.serveStream(w, r)
		}
	case d.actions && (path == "/actions/reset" || path == "/actions/force-open"):
		if allow(w, r, http.MethodPost) {
			d.serveAction(w, r, path)
		}
	default:
		http.NotFound(w, r)
	}
}

// allow reports whether r's method is one of methods, answering 405 with
// an Allow header if not.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	allowed := methods[0]
	for _, m := range methods[1:] {
		allowed += ", " + m
	}
	w.Header().Set("Allow", allowed)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}
