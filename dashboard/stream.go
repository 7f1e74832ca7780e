package dashboard

import (
	"encoding/json"
	"net/http"
	"time"
)

// writeTimeout bounds each write of a stream, where the server supports
// write deadlines, so that a client that stopped reading cannot hold its
// request (and Close) for longer.
const writeTimeout = 10 * time.Second

// serveStream answers GET events: a Server-Sent Events stream of
// snapshots (one "message" event each, its data the Snapshot's JSON on one
// line), the first at once, then on every circuit state change and every
// Interval, until the request's context ends or Close is called. It runs
// on the request's goroutine and starts none.
func (d *Dashboard) serveStream(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		http.Error(w, "dashboard closed", http.StatusServiceUnavailable)
		return
	}
	d.streams.Add(1)
	d.mu.Unlock()
	defer d.streams.Done()

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // proxies such as nginx: do not buffer
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)

	tick := time.NewTicker(d.interval)
	defer tick.Stop()
	// Reconnect after 1 s if the connection drops.
	buf := []byte("retry: 1000\n")
	for {
		changed := d.changes() // before the snapshot: no change is missed
		data, err := json.Marshal(d.Snapshot())
		if err != nil { // cannot happen: every field marshals
			return
		}
		buf = append(buf, "data: "...)
		buf = append(buf, data...)
		buf = append(buf, "\n\n"...)
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout)) // unsupported: no deadline
		if _, err := w.Write(buf); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		buf = buf[:0]
		select {
		case <-changed:
		case <-tick.C:
		case <-r.Context().Done():
			return
		case <-d.done:
			return
		}
	}
}
