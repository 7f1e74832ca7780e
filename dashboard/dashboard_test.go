package dashboard_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/dashboard"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/ratelimit"
	"github.com/bulwark-go/bulwark/retry"
)

func TestNewRejectsInvalidConfig(t *testing.T) {
	s := newStack(t)
	for _, tc := range []struct {
		name  string
		cfg   dashboard.Config
		field string
	}{
		{"nil stack", dashboard.Config{}, "Config.Stack"},
		{"negative events", dashboard.Config{Stack: s, Events: -1}, "Config.Events"},
		{"negative interval", dashboard.Config{Stack: s, Interval: -time.Second}, "Config.Interval"},
		{"interval below the minimum", dashboard.Config{Stack: s, Interval: time.Millisecond}, "Config.Interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := dashboard.New(tc.cfg)
			require.ErrorIs(t, err, dashboard.ErrInvalid)
			assert.Contains(t, err.Error(), tc.field)
			assert.Nil(t, d)
		})
	}
	d, err := dashboard.Handler(nil)
	require.ErrorIs(t, err, dashboard.ErrInvalid)
	assert.Nil(t, d)
}

func TestSnapshotJSON(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t)
		require.NoError(t, s.Configure("notion", pipeline.Config{
			Breaker:     &breaker.Config{FailureThreshold: 2, ResetTimeout: time.Minute},
			Fallback:    &pipeline.FallbackConfig{},
			Idempotency: &pipeline.IdempotencyConfig{},
		}))
		require.NoError(t, s.Configure("github", pipeline.Config{})) // no layers
		d := newDashboard(t, dashboard.Config{Stack: s})
		start := time.Now()

		time.Sleep(10 * time.Millisecond)
		require.NoError(t, succeed(s, "notion", pipeline.Operation("list")).Err) // cached
		require.NoError(t, succeed(s, "notion", pipeline.IdempotencyKey("create-1")).Err)
		require.True(t, succeed(s, "notion", pipeline.IdempotencyKey("create-1")).Replayed)
		fail(s, "notion")
		fail(s, "notion") // opens the circuit
		r := fail(s, "notion", pipeline.Operation("list"))
		require.True(t, r.Rejected && r.FromCache, "%+v", r)
		succeed(s, "github")

		w := serve(d, http.MethodGet, "/snapshot.json", nil)
		require.Equal(t, http.StatusOK, w.code)
		assert.Equal(t, "application/json", w.header.Get("Content-Type"))
		assert.Equal(t, "no-store", w.header.Get("Cache-Control"))

		// The JSON names are the contract of snapshot.json.
		var raw struct {
			Time      string           `json:"time"`
			Executors []map[string]any `json:"executors"`
			Events    []map[string]any `json:"events"`
		}
		require.NoError(t, json.Unmarshal(w.body.Bytes(), &raw))
		require.Len(t, raw.Executors, 2)
		assert.Equal(t, map[string]any{"name": "github", "breaker": false, "successRate": nil, "calls": 0.0,
			"successes": 0.0, "failures": 0.0, "rejections": 0.0, "timesOpened": 0.0, "meanLatencyNs": 0.0,
			"fallback": false, "fromCache": 0.0, "replays": 0.0}, raw.Executors[0])
		assert.Equal(t, map[string]any{"name": "notion", "breaker": true, "state": "OPEN", "successRate": 0.5,
			"calls": 5.0, "successes": 2.0, "failures": 2.0, "rejections": 1.0, "timesOpened": 1.0,
			"meanLatencyNs": 0.0, "nextProbe": start.Add(10*time.Millisecond + time.Minute).UTC().Format(time.RFC3339Nano),
			"fallback": true, "fromCache": 1.0, "replays": 1.0}, raw.Executors[1])
		assert.Equal(t, start.Add(10*time.Millisecond).UTC().Format(time.RFC3339Nano), raw.Time)

		// The events, newest first, without request:success.
		var kinds []any
		for _, ev := range raw.Events {
			kinds = append(kinds, ev["kind"])
			assert.Equal(t, "notion", ev["executor"])
			assert.NotContains(t, ev, "key", "idempotency keys are not shown")
		}
		assert.Equal(t, []any{"fallback:used", "request:rejected", "circuit:opened", "request:failure", "request:failure", "idempotency:replayed"}, kinds)
		assert.Equal(t, map[string]any{"time": raw.Time, "executor": "notion", "kind": "circuit:opened",
			"from": "CLOSED", "to": "OPEN", "summary": "CLOSED → OPEN"}, raw.Events[2])
		assert.Equal(t, "503 service unavailable", raw.Events[3]["error"])
		assert.Equal(t, "breaker notion: circuit open", raw.Events[1]["error"])

		// Snapshot() is the same value.
		snap := d.Snapshot()
		assert.Equal(t, snapshotOf(t, d), snap)
		assert.Equal(t, time.Minute, executorOf(t, snap, "notion").NextProbe.Sub(snap.Time))
	})
}

// loadStack returns a Stack whose executors have load layers: notion a
// bulkhead (2 slots, a queue of 1), slack a rate limiter (1 call/s, no
// waiting), trello a retry budget (2 retries); github has no layers.
func loadStack(t *testing.T) *pipeline.Stack {
	t.Helper()
	s := newStack(t)
	require.NoError(t, s.Configure("notion", pipeline.Config{Bulkhead: &bulkhead.Config{MaxConcurrent: 2, MaxWaiting: 1}}))
	require.NoError(t, s.Configure("slack", pipeline.Config{RateLimit: &ratelimit.Config{Rate: 1, MaxWait: -1}}))
	require.NoError(t, s.Configure("trello", pipeline.Config{Retry: &retry.Config{
		MaxAttempts: 2, NoWait: true,
		Budget: &retry.Budget{Ratio: 0.01, MinPerSecond: 0.15, Window: 10 * time.Second}, // 1.5 + 0.01 × calls: 2 retries
	}}))
	require.NoError(t, s.Configure("github", pipeline.Config{}))
	return s
}

// overload puts loadStack's executors in an overload: notion's bulkhead
// held full by calls blocked until release is closed, with a third call
// queued and a fourth refused; slack's limiter refusing a call, then
// paused for 30 s by a 429 with Retry-After; trello's retry budget
// refusing a retry. Wait for the blocked calls with wg after closing
// release.
func overload(t *testing.T, s *pipeline.Stack) (release chan struct{}, wg *sync.WaitGroup) {
	t.Helper()
	release, wg = make(chan struct{}), &sync.WaitGroup{}
	blocked := func(context.Context) (string, error) { <-release; return "ok", nil }
	for range 3 { // two in flight, one in the queue
		wg.Go(func() { pipeline.Execute(context.Background(), s, "notion", blocked) })
	}
	synctest.Wait()
	require.ErrorIs(t, pipeline.Execute(context.Background(), s, "notion", blocked).Err, bulkhead.ErrFull)

	require.NoError(t, succeed(s, "slack").Err)
	require.ErrorIs(t, succeed(s, "slack").Err, ratelimit.ErrLimited, "no token for a second")
	time.Sleep(time.Second)
	tooMany := func(context.Context) (string, error) {
		return "", retry.After(errors.New("429 Too Many Requests"), 30*time.Second)
	}
	require.Error(t, pipeline.Execute(context.Background(), s, "slack", tooMany).Err)
	require.ErrorIs(t, succeed(s, "slack").Err, ratelimit.ErrLimited, "paused")

	for range 2 {
		require.Equal(t, 2, fail(s, "trello").Attempts)
	}
	require.Equal(t, 1, fail(s, "trello").Attempts, "the budget refused the retry")
	return release, wg
}

// TestSnapshotLoadLayers: the snapshot shows each executor's bulkhead,
// rate limiter and retry budget as they are in an overload, in JSON under
// their camelCase names, and none for an executor without them.
func TestSnapshotLoadLayers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		s := loadStack(t)
		d := newDashboard(t, dashboard.Config{Stack: s})
		release, wg := overload(t, s)

		snap := snapshotOf(t, d)
		assert.Equal(t, &dashboard.BulkheadStats{MaxConcurrent: 2, MaxWaiting: 1, InFlight: 2, Waiting: 1, Admitted: 2, Queued: 1, Rejected: 1},
			executorOf(t, snap, "notion").Bulkhead)
		assert.Equal(t, &dashboard.RateLimitStats{Rate: 1, Burst: 1, Admitted: 2, Rejected: 2, PausedUntil: start.Add(31 * time.Second).UTC()},
			executorOf(t, snap, "slack").RateLimit)
		assert.Equal(t, &dashboard.RetryBudgetStats{Calls: 3, Retries: 2, Refused: 1}, executorOf(t, snap, "trello").RetryBudget)
		assert.Equal(t, snap, d.Snapshot())
		github := executorOf(t, snap, "github")
		assert.True(t, github.Bulkhead == nil && github.RateLimit == nil && github.RetryBudget == nil, "%+v", github)

		// The JSON names, and the layers an executor lacks left out.
		var raw struct {
			Executors []map[string]any `json:"executors"`
		}
		require.NoError(t, json.Unmarshal(serve(d, http.MethodGet, "/snapshot.json", nil).body.Bytes(), &raw))
		byName := map[string]map[string]any{}
		for _, ex := range raw.Executors {
			byName[ex["name"].(string)] = ex
		}
		assert.Equal(t, map[string]any{"maxConcurrent": 2.0, "maxWaiting": 1.0, "inFlight": 2.0, "waiting": 1.0,
			"admitted": 2.0, "queued": 1.0, "rejected": 1.0, "canceled": 0.0}, byName["notion"]["bulkhead"])
		assert.Equal(t, map[string]any{"rate": 1.0, "burst": 1.0, "admitted": 2.0, "delayed": 0.0, "rejected": 2.0,
			"canceled": 0.0, "waitedNs": 0.0, "pausedUntil": start.Add(31 * time.Second).UTC().Format(time.RFC3339Nano)}, byName["slack"]["rateLimit"])
		assert.Equal(t, map[string]any{"calls": 3.0, "retries": 2.0, "refused": 1.0}, byName["trello"]["retryBudget"])
		for name, ex := range byName {
			for key, has := range map[string]bool{"bulkhead": name == "notion", "rateLimit": name == "slack", "retryBudget": name == "trello"} {
				_, ok := ex[key]
				assert.Equal(t, has, ok, "%s: %s", name, key)
			}
		}

		// The overload ends: the blocked calls return, the queued one
		// runs, the pause runs out.
		close(release)
		wg.Wait()
		time.Sleep(30 * time.Second)
		snap = snapshotOf(t, d)
		assert.Equal(t, &dashboard.BulkheadStats{MaxConcurrent: 2, MaxWaiting: 1, Admitted: 3, Queued: 1, Rejected: 1},
			executorOf(t, snap, "notion").Bulkhead)
		assert.Zero(t, executorOf(t, snap, "slack").RateLimit.PausedUntil, "the pause is over")
		assert.NotContains(t, serve(d, http.MethodGet, "/snapshot.json", nil).body.String(), "pausedUntil")

		// The events of the load layers read as sentences.
		var summaries []string
		for _, ev := range snap.Events {
			if strings.HasPrefix(ev.Kind, "bulkhead:") || strings.HasPrefix(ev.Kind, "ratelimit:") {
				summaries = append(summaries, ev.Kind+" "+ev.Summary)
			}
		}
		assert.Equal(t, []string{
			"ratelimit:rejected needed a wait of 30.0 s: ratelimit slack: paused",
			"ratelimit:paused paused for 30.0 s",
			"ratelimit:rejected needed a wait of 1.0 s: ratelimit slack: rate limit exceeded",
			"bulkhead:rejected bulkhead notion: full",
		}, summaries)
	})
}

// TestSnapshotUnlimitedRate: a limiter of rate +Inf (only pauses hold
// calls) is "unlimited" in JSON, which has no infinity; the snapshot and
// the page are still served.
func TestSnapshotUnlimitedRate(t *testing.T) {
	s := newStack(t)
	require.NoError(t, s.Configure("notion", pipeline.Config{RateLimit: &ratelimit.Config{Rate: math.Inf(1)}}))
	d := newDashboard(t, dashboard.Config{Stack: s})
	require.NoError(t, succeed(s, "notion").Err)
	w := serve(d, http.MethodGet, "/snapshot.json", nil)
	require.Equal(t, http.StatusOK, w.code, w.body.String())
	assert.Contains(t, w.body.String(), `"rateLimit":{"rate":0,"burst":`)
	assert.Contains(t, w.body.String(), `"unlimited":true,"admitted":1,`)
	assert.True(t, executorOf(t, snapshotOf(t, d), "notion").RateLimit.Unlimited)
	assert.Equal(t, http.StatusOK, serve(d, http.MethodGet, "/", nil).code)
}

func TestSnapshotForcedAndHalfOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t)
		d := newDashboard(t, dashboard.Config{Stack: s})
		succeed(s, "payments")
		s.Breaker("payments").ForceOpen()
		ex := executorOf(t, snapshotOf(t, d), "payments")
		assert.True(t, ex.Forced)
		assert.Equal(t, "OPEN", ex.State)
		assert.True(t, ex.NextProbe.IsZero(), "a forced circuit has no next probe")
		assert.Equal(t, "CLOSED → OPEN (forced open by an operator)", d.Snapshot().Events[0].Summary)

		s.Breaker("payments").Reset()
		fail(s, "payments")
		fail(s, "payments")
		time.Sleep(time.Minute)
		synctest.Wait()
		assert.Equal(t, "CLOSED → OPEN", d.Snapshot().Events[0].Summary, "opened by failures")
		succeed(s, "payments") // the first probe: HALF_OPEN until the second
		ex = executorOf(t, snapshotOf(t, d), "payments")
		assert.Equal(t, "HALF_OPEN", ex.State)
		assert.False(t, ex.Forced)
		assert.True(t, ex.NextProbe.IsZero())
	})
}

func TestEventsAreBounded(t *testing.T) {
	s, err := pipeline.New(pipeline.Config{Breaker: &breaker.Config{FailureThreshold: 100}})
	require.NoError(t, err)
	d := newDashboard(t, dashboard.Config{Stack: s, Events: 3})
	for i := range 10 {
		pipeline.Execute(t.Context(), s, "notion", func(context.Context) (int, error) { return 0, numbered(i) })
	}
	evs := d.Snapshot().Events
	require.Len(t, evs, 3)
	for i, ev := range evs {
		assert.Equal(t, "request:failure", ev.Kind)
		assert.Equal(t, numbered(9-i).Error(), ev.Error, "newest first")
	}
}

func TestRoutesAndMethods(t *testing.T) {
	d := newDashboard(t, dashboard.Config{Stack: newStack(t)})
	for _, tc := range []struct {
		method, target string
		code           int
		allow          string
	}{
		{http.MethodGet, "/", http.StatusOK, ""},
		{http.MethodHead, "/", http.StatusOK, ""},
		{http.MethodPost, "/", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodGet, "/snapshot.json", http.StatusOK, ""},
		{http.MethodDelete, "/snapshot.json", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodPost, "/events", http.StatusMethodNotAllowed, "GET"},
		{http.MethodGet, "/index.html", http.StatusNotFound, ""},
		{http.MethodGet, "/status/", http.StatusNotFound, ""},
	} {
		w := serve(d, tc.method, tc.target, nil)
		assert.Equal(t, tc.code, w.code, "%s %s", tc.method, tc.target)
		assert.Equal(t, tc.allow, w.header.Get("Allow"), "%s %s", tc.method, tc.target)
		if tc.method == http.MethodHead {
			assert.Zero(t, w.body.Len(), "HEAD has no body")
		}
	}
}

func TestMountedUnderAPrefix(t *testing.T) {
	d := newDashboard(t, dashboard.Config{Stack: newStack(t)})
	mux := http.NewServeMux()
	mux.Handle("/status/", http.StripPrefix("/status", d))
	assert.Equal(t, http.StatusOK, serve(mux, http.MethodGet, "/status/", nil).code)
	assert.Equal(t, http.StatusOK, serve(mux, http.MethodGet, "/status/snapshot.json", nil).code)
	w := serve(mux, http.MethodGet, "/status", nil)
	assert.Contains(t, []int{http.StatusMovedPermanently, http.StatusTemporaryRedirect}, w.code, "the mux adds the slash the page's relative URLs need")
	assert.Equal(t, "/status/", w.header.Get("Location"))
	// The page refers to its routes relatively, so they resolve under the prefix.
	body := serve(mux, http.MethodGet, "/status/", nil).body.String()
	assert.Contains(t, body, `new EventSource("events")`)
	assert.NotContains(t, body, `"/events"`)
}

func TestPage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t)
		require.NoError(t, s.Configure("github", pipeline.Config{}))
		d := newDashboard(t, dashboard.Config{Stack: s})
		succeed(s, "notion")
		fail(s, "payments")
		fail(s, "payments")
		fail(s, `<script>alert("x")</script>`)

		w := serve(d, http.MethodGet, "/", nil)
		require.Equal(t, http.StatusOK, w.code)
		body := w.body.String()
		assert.Equal(t, "text/html; charset=utf-8", w.header.Get("Content-Type"))

		// One row per executor, its state cell coloured by class.
		assert.Regexp(t, `<tr data-executor="notion">\s*<td class="name">notion</td><td class="state closed"><span>CLOSED</span></td>\s*<td class="num">100.0%</td><td class="num">1</td><td class="num">0</td>\s*<td class="num">0</td><td class="num">`, body)
		assert.Regexp(t, `<tr data-executor="payments">\s*<td class="name">payments</td><td class="state open"><span>OPEN</span></td>\s*<td class="num">0.0%</td><td class="num">2</td><td class="num">2</td>\s*<td class="num">0</td><td class="num">[^<]*</td><td>in 60s</td>\s*<td class="num">-</td><td class="num">0</td>`, body)
		assert.Regexp(t, `<tr data-executor="github">\s*<td class="name">github</td><td class="state none"><span>-</span></td>`, body)
		assert.Contains(t, body, `<td class="k-open">circuit:opened</td><td class="summary">CLOSED → OPEN</td>`)

		// Names and messages are escaped, never markup.
		assert.NotContains(t, body, `<script>alert`)
		assert.Contains(t, body, `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`)

		// Only the page's own script and style run: the CSP nonce is
		// fresh per page and matches theirs.
		csp := w.header.Get("Content-Security-Policy")
		m := regexp.MustCompile(`script-src 'nonce-([^']+)'`).FindStringSubmatch(csp)
		require.NotNil(t, m, csp)
		assert.Contains(t, body, `<script nonce="`+m[1]+`">`)
		assert.Contains(t, body, `<style nonce="`+m[1]+`">`)
		assert.Contains(t, csp, "frame-ancestors 'none'")
		assert.Contains(t, csp, "default-src 'none'")
		assert.NotContains(t, serve(d, http.MethodGet, "/", nil).header.Get("Content-Security-Policy"), m[1])

		// No external asset: the only reference is the empty data: icon
		// (so that the browser asks for no favicon).
		assert.Equal(t, []string{`href="data:,"`}, regexp.MustCompile(`(src|href)="[^"]*"`).FindAllString(body, -1))
		assert.NotContains(t, body, "http://")
		assert.NotContains(t, body, "https://")

		// No buttons without Actions.
		assert.NotContains(t, body, "<button")
		assert.Contains(t, body, `data-actions="false"`)
	})
}

// TestPageShowsLoad: the server-rendered page has a Load column: each
// executor's load layers in one line, as a warning while its bulkhead is
// full or its limiter paused, and a dash without any.
func TestPageShowsLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := loadStack(t)
		d := newDashboard(t, dashboard.Config{Stack: s})
		release, wg := overload(t, s)
		load := func(body, executor string) string {
			t.Helper()
			m := regexp.MustCompile(`<tr data-executor="` + executor + `">(?s:.*?)(<td class="load[^"]*">[^<]*</td>)`).FindStringSubmatch(body)
			require.NotNil(t, m, "no Load cell for %s in %s", executor, body)
			return m[1]
		}

		body := serve(d, http.MethodGet, "/", nil).body.String()
		assert.Contains(t, body, `<th class="num">Replays</th><th>Load</th>`)
		assert.Equal(t, `<td class="load warn">2/2 in flight · 1 waiting · 1 full</td>`, load(body, "notion"))
		assert.Equal(t, `<td class="load warn">2 limited · paused 30s</td>`, load(body, "slack"))
		assert.Equal(t, `<td class="load">budget: 1 refused</td>`, load(body, "trello"))
		assert.Equal(t, `<td class="load">-</td>`, load(body, "github"))

		close(release)
		wg.Wait()
		time.Sleep(30 * time.Second)
		body = serve(d, http.MethodGet, "/", nil).body.String()
		assert.Equal(t, `<td class="load">0/2 in flight · 0 waiting · 1 full</td>`, load(body, "notion"))
		assert.Equal(t, `<td class="load">2 limited</td>`, load(body, "slack"))
	})
}

func TestCloseEndsEverything(t *testing.T) {
	s := newStack(t)
	d, err := dashboard.New(dashboard.Config{Stack: s})
	require.NoError(t, err)
	fail(s, "notion")
	before := d.Snapshot().Events
	require.Len(t, before, 1)

	d.Close()
	d.Close() // again: nothing
	for _, target := range []string{"/", "/snapshot.json", "/events"} {
		assert.Equal(t, http.StatusServiceUnavailable, serve(d, http.MethodGet, target, nil).code, target)
	}
	// Unsubscribed: later events are not kept, the statistics still read.
	fail(s, "notion")
	snap := d.Snapshot()
	assert.Equal(t, before, snap.Events)
	assert.Equal(t, "OPEN", executorOf(t, snap, "notion").State)
}

type numbered int

func (n numbered) Error() string { return "failure " + strings.Repeat("#", int(n)) }
