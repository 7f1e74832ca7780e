package dashboard

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"time"

	"github.com/bulwark-go/bulwark/breaker"
)

//go:embed page.html
var pageFS embed.FS

// page is the HTML page's template; parsed once, read-only.
var page = template.Must(template.ParseFS(pageFS, "page.html"))

// pageData is what page.html renders.
type pageData struct {
	Nonce   string // of the inline script and style (Content-Security-Policy)
	Actions bool
	Updated string
	Rows    []row
	Events  []eventRow
}

// row is one executor as the page shows it; the page's script formats
// the streamed snapshots the same way.
type row struct {
	Name, State, StateClass, Rate, Calls, Failures, Rejections string
	Latency, NextProbe, FromCache, Replays, Load               string
	Breaker, LoadWarn                                          bool
}

type eventRow struct {
	Time, Executor, Kind, KindClass, Summary string
}

// servePage answers GET /: the page, rendered with the current snapshot,
// whose script then follows the event stream.
func (d *Dashboard) servePage(w http.ResponseWriter, r *http.Request) {
	var nonce [16]byte
	rand.Read(nonce[:]) // never fails (crypto/rand)
	data := pageData{Nonce: hex.EncodeToString(nonce[:]), Actions: d.actions}
	snap := d.Snapshot()
	data.Updated = clock(snap.Time)
	for _, ex := range snap.Executors {
		data.Rows = append(data.Rows, rowOf(ex, snap.Time))
	}
	for _, ev := range snap.Events {
		data.Events = append(data.Events, eventRow{
			Time: clock(ev.Time), Executor: ev.Executor, Kind: ev.Kind,
			KindClass: kindClass(ev.Kind), Summary: ev.Summary,
		})
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// Nothing but the page's own script, style and routes; never framed
	// (the action buttons must not be clickjacked).
	h.Set("Content-Security-Policy", fmt.Sprintf("default-src 'none'; script-src 'nonce-%[1]s'; style-src 'nonce-%[1]s'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'", data.Nonce))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	w.Write(buf.Bytes())
}

// rowOf formats ex for the page, with now the snapshot's time.
func rowOf(ex Executor, now time.Time) row {
	r := row{
		Name: ex.Name, Breaker: ex.Breaker, State: "-", StateClass: "none",
		Rate: "-", Calls: "-", Failures: "-", Rejections: "-",
		Latency: "-", NextProbe: "-", FromCache: "-",
		Replays: fmt.Sprint(ex.Replays),
	}
	if ex.Breaker {
		r.State, r.StateClass = ex.State, stateClass(ex)
		if ex.SuccessRate != nil {
			r.Rate = fmt.Sprintf("%.1f%%", 100**ex.SuccessRate)
		}
		r.Calls, r.Failures, r.Rejections = fmt.Sprint(ex.Calls), fmt.Sprint(ex.Failures), fmt.Sprint(ex.Rejections)
		r.Latency = formatLatency(ex.MeanLatency)
		r.NextProbe = nextProbe(ex, now)
	}
	if ex.Fallback {
		r.FromCache = fmt.Sprint(ex.FromCache)
	}
	r.Load, r.LoadWarn = formatLoad(ex, now)
	return r
}

// stateClass is the CSS class that colours ex's state.
func stateClass(ex Executor) string {
	switch {
	case ex.Forced:
		return "forced"
	case ex.State == breaker.Open.String():
		return "open"
	case ex.State == breaker.HalfOpen.String():
		return "half-open"
	default:
		return "closed"
	}
}

// nextProbe says when ex lets the next probe through.
func nextProbe(ex Executor, now time.Time) string {
	switch {
	case ex.Forced:
		return "forced open"
	case ex.State == breaker.HalfOpen.String():
		return "probing"
	case ex.NextProbe.IsZero():
		return "-"
	}
	d := ex.NextProbe.Sub(now)
	if d <= 0 {
		return "due"
	}
	return fmt.Sprintf("in %.0fs", math.Ceil(d.Seconds()))
}

// kindClass is the CSS class of an event kind: its first part
// ("circuit", "request", ...), plus the state reached for circuit events.
func kindClass(kind string) string {
	switch kind {
	case "circuit:opened":
		return "k-open"
	case "circuit:half-open":
		return "k-half-open"
	case "circuit:closed":
		return "k-closed"
	case "request:failure", "retry:exhausted", "rollback:failed", "idempotency:conflict":
		return "k-bad"
	default:
		return "k-other"
	}
}

// clock formats t as the page shows times: UTC, to the millisecond.
func clock(t time.Time) string { return t.UTC().Format("15:04:05.000") }
