package browsertest

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/dashboard"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/ratelimit"
	"github.com/bulwark-go/bulwark/retry"
)

// chromium returns the browser to drive: $BULWARK_CHROMIUM, or Debian's
// /usr/bin/chromium. Without one the test is skipped, except under
// CI=true, where it fails.
func chromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv("BULWARK_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("no Chromium at %s (%v): install it with `apt-get install -y chromium` (Debian), or set BULWARK_CHROMIUM", path, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// outDir is where the screenshots go: $BULWARK_TEST_OUT, or out/ next
// to this file (ignored by git).
func outDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("BULWARK_TEST_OUT")
	if dir == "" {
		dir = "out"
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// service is a fake remote service that fails while down.
type service struct {
	mu   sync.Mutex
	down bool
}

func (s *service) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func (s *service) call(ctx context.Context) (string, error) {
	t := time.NewTimer(2 * time.Millisecond) // some latency to show
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return "", errors.New("503 Service Unavailable")
	}
	return "ok", nil
}

// browser starts a headless Chromium for the test and returns its
// context; everything ends with the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox, // as root in a container
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 720),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser to exit
	})
	return ctx
}

// stateCell is the CSS selector of executor's state cell.
func stateCell(executor string) string {
	return fmt.Sprintf(`tr[data-executor=%q] td.state`, executor)
}

// waitText polls the page's DOM until the element sel holds want,
// failing the test after within. It never reloads the page.
func waitText(t *testing.T, ctx context.Context, sel, want string, within time.Duration) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e !== null && e.textContent.trim() === %q; })()`, sel, want)
	if _, err := chromedp.Run(wctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e === null ? "<missing>" : e.textContent.trim(); })()`, sel)))
		t.Fatalf("%s: want %q within %v, the page shows %q (%v)", sel, want, within, got, err)
	}
}

// watchErrors collects the page's script errors and browser log errors
// (a CSP violation, a failed request); the returned func returns those
// seen so far.
func watchErrors(t *testing.T, ctx context.Context) func() []string {
	t.Helper()
	var (
		mu         sync.Mutex
		exceptions []string
	)
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			exceptions = append(exceptions, fmt.Sprintf("%s (line %d)", msg, d.LineNumber+1))
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError {
				exceptions = append(exceptions, e.Entry.Text)
			}
		}
	}))
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(exceptions) // not under mu while chromedp runs: the listener takes it
	}
}

// waitMatch polls the page's DOM until the text of the element sel
// matches the JavaScript regular expression re, failing the test after
// within. It never reloads the page.
func waitMatch(t *testing.T, ctx context.Context, sel, re string, within time.Duration) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e !== null && new RegExp(%q).test(e.textContent.trim()); })()`, sel, re)
	if _, err := chromedp.Run(wctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e === null ? "<missing>" : e.textContent.trim(); })()`, sel)))
		t.Fatalf("%s: want a match of %s within %v, the page shows %q (%v)", sel, re, within, got, err)
	}
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	path := filepath.Join(outDir(t), name)
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
}

// TestPageFollowsAnOutageLive loads the page once, then takes the
// payments service down and back up: the state cell must turn OPEN, then
// CLOSED, each within 2 s and without a reload; an operator's Reset
// button works from the page too.
func TestPageFollowsAnOutageLive(t *testing.T) {
	ctx := browser(t)

	stack, err := pipeline.New(pipeline.Config{Breaker: &breaker.Config{
		FailureThreshold: 2,
		ResetTimeout:     300 * time.Millisecond,
		SuccessThreshold: 1,
	}})
	require.NoError(t, err)
	reliable := pipeline.Reliable()
	reliable.Retry = nil
	require.NoError(t, stack.Configure("notion", reliable))
	require.NoError(t, stack.Configure("github", pipeline.Config{})) // no layers
	// No periodic pushes during the test: the page must follow the state
	// changes the stream pushes at once.
	d, err := dashboard.New(dashboard.Config{Stack: stack, Actions: true, Interval: time.Hour})
	require.NoError(t, err)
	srv := httptest.NewServer(d)
	t.Cleanup(func() {
		d.Close() // ends the page's event stream, which srv.Close would wait for
		srv.Close()
	})

	payments, notion := &service{}, &service{}
	bg := context.Background()
	for range 5 {
		pipeline.Execute(bg, stack, "payments", payments.call)
		pipeline.Execute(bg, stack, "notion", notion.call, pipeline.Operation("list-pages"))
	}
	pipeline.Execute(bg, stack, "notion", notion.call, pipeline.IdempotencyKey("create-page-1"))
	pipeline.Execute(bg, stack, "notion", notion.call, pipeline.IdempotencyKey("create-page-1"))
	pipeline.Execute(bg, stack, "github", notion.call)

	scriptErrors := watchErrors(t, ctx)

	// Load the page once and mark the document: a reload would lose the mark.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(stateCell("payments"))),
		chromedp.Evaluate[chromedp.Void](`window.bulwarkMark = "same document"`),
	))
	waitText(t, ctx, stateCell("payments"), "CLOSED", 2*time.Second)
	waitText(t, ctx, "#status", "live", 2*time.Second) // the event stream is open

	// The outage: two failures open the circuit.
	payments.setDown(true)
	for range 2 {
		pipeline.Execute(bg, stack, "payments", payments.call)
	}
	require.Equal(t, breaker.Open, stack.Breaker("payments").State())
	waitText(t, ctx, stateCell("payments"), "OPEN", 2*time.Second)
	waitText(t, ctx, `tr[data-executor="payments"] td:nth-child(5)`, "2", time.Second) // the failures, in the same push
	screenshot(t, ctx, "dashboard-outage.png")

	// Recovery: the service is back; after the reset timeout a probe
	// succeeds and closes the circuit.
	payments.setDown(false)
	deadline := time.Now().Add(5 * time.Second)
	for stack.Breaker("payments").State() != breaker.Closed {
		require.True(t, time.Now().Before(deadline), "the circuit did not close")
		pipeline.Execute(bg, stack, "payments", payments.call)
		time.Sleep(50 * time.Millisecond) // the reset timeout is real time here
	}
	waitText(t, ctx, stateCell("payments"), "CLOSED", 2*time.Second)

	// An operator holds it open from the server, then resets it from the page.
	stack.Breaker("payments").ForceOpen()
	waitText(t, ctx, stateCell("payments"), "OPEN", 2*time.Second)
	waitText(t, ctx, `tr[data-executor="payments"] td:nth-child(8)`, "forced open", 2*time.Second)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tr[data-executor="payments"] button[data-action="actions/reset"]`))))
	waitText(t, ctx, stateCell("payments"), "CLOSED", 2*time.Second)
	assert.Equal(t, breaker.Closed, stack.Breaker("payments").State())
	waitText(t, ctx, "#message", "", time.Second) // the action reported no error
	screenshot(t, ctx, "dashboard-recovered.png")

	mark, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.bulwarkMark`))
	require.NoError(t, err)
	assert.Equal(t, "same document", mark, "the page was reloaded")
	assert.Empty(t, scriptErrors(), "script errors on the page")

	events, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#events")))
	require.NoError(t, err)
	assert.True(t, strings.Contains(events, "circuit:opened") && strings.Contains(events, "circuit:closed"), events)
}

// TestLoadCellFollowsABulkheadLive loads the page once, then fills the
// payments bulkhead with calls that block: its Load cell must show every
// slot taken, as a warning, within 2 s and without a reload, then a
// refused call, then a slot free again; and slack's cell a pause.
func TestLoadCellFollowsABulkheadLive(t *testing.T) {
	ctx := browser(t)

	stack, err := pipeline.New(pipeline.Config{})
	require.NoError(t, err)
	require.NoError(t, stack.Configure("payments", pipeline.Config{Bulkhead: &bulkhead.Config{MaxConcurrent: 2}}))
	require.NoError(t, stack.Configure("slack", pipeline.Config{RateLimit: &ratelimit.Config{Rate: 1000}}))
	require.NoError(t, stack.Configure("github", pipeline.Config{})) // no layers
	// No event marks a bulkhead filling up: the Load cell follows the
	// periodic push.
	d, err := dashboard.New(dashboard.Config{Stack: stack, Interval: 100 * time.Millisecond})
	require.NoError(t, err)
	srv := httptest.NewServer(d)
	t.Cleanup(func() {
		d.Close()
		srv.Close()
	})
	scriptErrors := watchErrors(t, ctx)
	bg := context.Background()
	pipeline.Execute(bg, stack, "github", (&service{}).call)

	const load = `tr[data-executor="payments"] td.load`
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(load)),
		chromedp.Evaluate[chromedp.Void](`window.bulwarkMark = "same document"`),
	))
	waitText(t, ctx, "#status", "live", 2*time.Second)
	waitText(t, ctx, load, "0/2 in flight · 0 full", time.Second)
	waitText(t, ctx, `tr[data-executor="github"] td.load`, "-", time.Second)
	assert.Equal(t, "load", className(t, ctx, load))

	// Two calls that block take both slots; a third is refused.
	release := make(chan struct{})
	blocked := func(context.Context) (string, error) { <-release; return "ok", nil }
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(release) // also when the test fails early
	for range 2 {
		wg.Go(func() { pipeline.Execute(bg, stack, "payments", blocked) })
	}
	deadline := time.Now().Add(2 * time.Second)
	for stack.Stats()["payments"].Bulkhead.InFlight < 2 {
		require.True(t, time.Now().Before(deadline), "the calls did not take the slots")
		time.Sleep(time.Millisecond)
	}
	waitText(t, ctx, load, "2/2 in flight · 0 full", 2*time.Second)
	assert.Equal(t, "load warn", className(t, ctx, load), "a full bulkhead is a warning")
	require.ErrorIs(t, pipeline.Execute(bg, stack, "payments", blocked).Err, bulkhead.ErrFull)
	waitText(t, ctx, load, "2/2 in flight · 1 full", 2*time.Second)
	screenshot(t, ctx, "dashboard-load.png")

	release <- struct{}{} // one call returns
	waitText(t, ctx, load, "1/2 in flight · 1 full", 2*time.Second)
	assert.Equal(t, "load", className(t, ctx, load), "no longer full")

	// A 429 with Retry-After pauses slack's limiter: a warning too, with
	// the seconds left.
	const slack = `tr[data-executor="slack"] td.load`
	waitText(t, ctx, slack, "0 limited", time.Second)
	pipeline.Execute(bg, stack, "slack", func(context.Context) (string, error) {
		return "", retry.After(errors.New("429 Too Many Requests"), 30*time.Second)
	})
	waitMatch(t, ctx, slack, `^0 limited · paused (30|29|28)s$`, 2*time.Second)
	assert.Equal(t, "load warn", className(t, ctx, slack), "a pause is a warning")

	mark, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.bulwarkMark`))
	require.NoError(t, err)
	assert.Equal(t, "same document", mark, "the page was reloaded")
	assert.Empty(t, scriptErrors(), "script errors on the page")
}

// className returns the class attribute of the element sel.
func className(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	cls, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).className`, sel)))
	require.NoError(t, err)
	return cls
}
