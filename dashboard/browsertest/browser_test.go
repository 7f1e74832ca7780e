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
	"github.com/bulwark-go/bulwark/dashboard"
	"github.com/bulwark-go/bulwark/pipeline"
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

	var (
		mu         sync.Mutex
		exceptions []string
	)
	// Script errors and browser log errors (a CSP violation, a failed
	// request) are collected and must stay none.
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
	mu.Lock()
	errs := slices.Clone(exceptions) // not under mu while chromedp runs: the listener takes it
	mu.Unlock()
	assert.Empty(t, errs, "script errors on the page")

	events, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#events")))
	require.NoError(t, err)
	assert.True(t, strings.Contains(events, "circuit:opened") && strings.Contains(events, "circuit:closed"), events)
}
