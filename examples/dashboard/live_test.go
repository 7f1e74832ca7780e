package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/dashboard"
)

// TestSimulateOutage runs the live scene's first 40 seconds in virtual
// time: trello's circuit opens soon after the outage starts at 0:10,
// probes every 5 s while it lasts, and closes soon after it ends at 0:30.
func TestSimulateOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc, err := newScene(trelloReset)
		require.NoError(t, err)
		start := time.Now()
		var (
			mu      sync.Mutex
			changes []string
		)
		defer sc.stack.Subscribe(func(e bulwark.Event) {
			if e.Executor == "trello" && e.From != "" {
				mu.Lock()
				defer mu.Unlock()
				changes = append(changes, e.To+" at "+e.Time.Sub(start).Truncate(time.Second).String())
			}
		})()

		ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
		defer cancel()
		var out strings.Builder
		simulate(ctx, &out, sc)

		assert.Equal(t, "0:10 trello goes down (simulated outage)\n0:30 trello is back\n", out.String())
		mu.Lock()
		defer mu.Unlock()
		t.Log(changes)
		require.NotEmpty(t, changes)
		assert.Equal(t, "OPEN at 10s", changes[0], "opens within a second of the outage: %v", changes)
		assert.Contains(t, changes, "HALF_OPEN at 15s", "probes after the reset timeout")
		assert.Equal(t, "CLOSED", strings.Fields(changes[len(changes)-1])[0], "closed after the outage: %v", changes)
		closedAt, err := time.ParseDuration(strings.Fields(changes[len(changes)-1])[2])
		require.NoError(t, err)
		assert.True(t, closedAt >= outageEnd && closedAt <= outageEnd+trelloReset+time.Second, "closed at %v", closedAt)
		assert.Equal(t, "CLOSED", sc.stack.Breaker("notion").State().String(), "the other services are not affected")
		assert.NotZero(t, sc.stack.Stats()["trello"].Fallback.Hits, "the outage was answered from the cache")
		rounds := int64(40*time.Second/roundEvery) + 1
		assert.Equal(t, rounds*3/4, sc.stack.Stats()["payments"].Replays, "three charges in four are replays")
		slack := sc.stack.Stats()["slack"]
		bursts := (rounds - 1 + burstEvery - 1) / burstEvery // the last round's, at 0:40, meets the context's end
		assert.Equal(t, bursts*(burstSize-4), slack.Bulkhead.Rejected, "each burst overflows slack's bulkhead by 2")
		assert.Zero(t, slack.Bulkhead.InFlight)
		assert.GreaterOrEqual(t, int64(slack.Fallback.Hits), slack.Bulkhead.Rejected, "the refused calls were answered from the cache")
	})
}

// lines is an io.Writer that hands each write to a channel.
type lines chan string

func (l lines) Write(p []byte) (int, error) {
	l <- string(p)
	return len(p), nil
}

// TestServe serves the page on a loopback port: the printed URL answers
// with the page, its snapshot and its event stream, and cancelling the
// context shuts the server down even while a stream is open.
func TestServe(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := make(lines, 16)
	served := make(chan error, 1)
	go func() { served <- serve(ctx, out, "127.0.0.1:0") }()

	first := <-out
	url, ok := strings.CutPrefix(strings.TrimSpace(first), "Dashboard: ")
	require.True(t, ok, first)
	require.True(t, strings.HasPrefix(url, "http://127.0.0.1:") && strings.HasSuffix(url, "/status/"), url)
	<-out // the help line

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	get := func(u string) (*http.Response, string) {
		res, err := client.Get(u)
		require.NoError(t, err)
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res, string(body)
	}
	res, body := get(url)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, body, "<title>bulwark status</title>")
	assert.Contains(t, body, `data-actions="true"`)
	res, body = get(strings.TrimSuffix(url, "status/"))
	assert.Equal(t, http.StatusOK, res.StatusCode, "/ redirects to the page")
	assert.Contains(t, body, "<title>bulwark status</title>")

	_, body = get(url + "snapshot.json")
	var snap dashboard.Snapshot
	require.NoError(t, json.Unmarshal([]byte(body), &snap))
	var names []string
	for _, ex := range snap.Executors {
		names = append(names, ex.Name)
	}
	assert.Equal(t, []string{"github", "notion", "payments", "slack", "trello"}, names)
	require.NotNil(t, snap.Executors[3].Bulkhead, "slack's load layers are on the page")
	assert.Equal(t, 4, snap.Executors[3].Bulkhead.MaxConcurrent)
	require.NotNil(t, snap.Executors[3].RateLimit)

	// An open stream does not hold the shutdown.
	stream, err := client.Get(url + "events")
	require.NoError(t, err)
	defer stream.Body.Close()
	sc := bufio.NewScanner(stream.Body)
	sc.Buffer(nil, 1<<20)
	require.True(t, sc.Scan())
	assert.Equal(t, "retry: 1000", sc.Text())
	require.True(t, sc.Scan())
	assert.True(t, strings.HasPrefix(sc.Text(), "data: {"), sc.Text())

	cancel()
	select {
	case err := <-served:
		require.NoError(t, err)
	case <-time.After(4 * time.Second): // a bound for a hang: Shutdown's own limit is 5 s
		t.Fatal("serve did not return after its context ended")
	}
	for sc.Scan() { // the server ended the stream
	}
}
