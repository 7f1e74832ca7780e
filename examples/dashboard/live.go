package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark/dashboard"
	"github.com/bulwark-go/bulwark/pipeline"
)

// The live scene: a round of traffic every roundEvery; trello goes down
// outageStart into every cycle and comes back outageEnd into it.
const (
	roundEvery  = 250 * time.Millisecond
	cycle       = 60 * time.Second
	outageStart = 10 * time.Second
	outageEnd   = 30 * time.Second
	trelloReset = 5 * time.Second // trello's breaker probes 5s after opening
	burstEvery  = 8               // rounds: a burst to slack every 2s
	burstSize   = 6               // calls at once: slack's bulkhead (4 slots) refuses 2
)

// serve serves the live status page of a new scene on addr, prints its
// URL, and sends traffic with a recurring outage until ctx is done; then
// it shuts the server down.
func serve(ctx context.Context, w io.Writer, addr string) error {
	sc, err := newScene(trelloReset)
	if err != nil {
		return err
	}
	d, err := dashboard.New(dashboard.Config{Stack: sc.stack, Actions: true})
	if err != nil {
		return err
	}
	defer d.Close()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/status/", http.StripPrefix("/status", d))
	mux.Handle("/{$}", http.RedirectHandler("/status/", http.StatusFound))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	fmt.Fprintf(w, "Dashboard: http://%s/status/\n", ln.Addr())
	fmt.Fprintf(w, "trello goes down %v into every minute and comes back at %v; every %v, %d calls at once to slack overflow its bulkhead (Load); the Reset and Force open buttons act on a circuit.\n",
		outageStart, outageEnd, burstEvery*roundEvery, burstSize)
	simulate(ctx, w, sc)

	// Close first: it ends the page's event streams, which Shutdown would
	// otherwise wait for.
	d.Close()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}

// burst sends burstSize calls to slack at once, each on a goroutine of
// wg: slack's bulkhead lets 4 in and refuses the others (answered from
// the cache).
func (sc *scene) burst(ctx context.Context, wg *sync.WaitGroup) {
	for range burstSize {
		wg.Go(func() {
			pipeline.Execute(ctx, sc.stack, "slack", sc.services["slack"].call, pipeline.Operation("list"))
		})
	}
}

// simulate sends a round of traffic, and a charge to payments that is
// sent four times (so three are idempotent replays), every roundEvery,
// and a burst to slack every burstEvery rounds, until ctx is done, taking
// trello down and up again on the cycle, and prints when.
func simulate(ctx context.Context, w io.Writer, sc *scene) {
	start := time.Now()
	tick := time.NewTicker(roundEvery)
	defer tick.Stop()
	down := false
	var bursts sync.WaitGroup
	defer bursts.Wait()
	for n := 0; ; n++ {
		elapsed := time.Since(start)
		at := elapsed % cycle
		if outage := at >= outageStart && at < outageEnd; outage != down {
			down = outage
			sc.services["trello"].setDown(down)
			what := "trello is back"
			if down {
				what = "trello goes down (simulated outage)"
			}
			fmt.Fprintf(w, "%d:%02d %s\n", int(elapsed.Minutes()), int(elapsed.Seconds())%60, what)
		}
		sc.round(ctx)
		if n%burstEvery == 0 { // while the loop waits for the next round
			sc.burst(ctx, &bursts)
		}
		// A client that sends each charge four times: three are replayed.
		pipeline.Execute(ctx, sc.stack, "payments", sc.services["payments"].call, pipeline.IdempotencyKeyParts("charge", n/4))
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
