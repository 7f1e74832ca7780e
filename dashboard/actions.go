package dashboard

import (
	"encoding/json"
	"net/http"
)

// serveAction answers POST actions/reset and actions/force-open (only
// routed with Config.Actions): it refuses cross-origin browser requests
// (403), a missing executor parameter (400), and an executor that does
// not exist or has no breaker (404); otherwise it resets or force-opens
// the breaker and answers 200 with the executor's new state as JSON.
func (d *Dashboard) serveAction(w http.ResponseWriter, r *http.Request, path string) {
	if err := d.csrf.Check(r); err != nil {
		http.Error(w, "cross-origin request refused: "+err.Error(), http.StatusForbidden)
		return
	}
	name := r.URL.Query().Get("executor")
	if name == "" {
		http.Error(w, "missing executor parameter", http.StatusBadRequest)
		return
	}
	b := d.stack.Breaker(name)
	if b == nil {
		http.Error(w, "no executor with a breaker named "+name, http.StatusNotFound)
		return
	}
	if path == "/actions/reset" {
		b.Reset()
	} else {
		b.ForceOpen()
	}
	// The breaker's event woke the streams if the state changed.
	for _, ex := range d.Snapshot().Executors {
		if ex.Name == name {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			_ = json.NewEncoder(w).Encode(ex)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
