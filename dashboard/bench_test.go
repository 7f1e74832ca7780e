package dashboard_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/dashboard"
	"github.com/bulwark-go/bulwark/pipeline"
)

// BenchmarkCall measures what an open Dashboard adds to a call: a
// success (whose event it ignores) and a failure (whose event it keeps),
// against a Stack with a subscriber that does nothing (so that the layers
// build the same events either way).
func BenchmarkCall(b *testing.B) {
	ok := func(context.Context) (int, error) { return 1, nil }
	bad := func(context.Context) (int, error) { return 0, errDown }
	for _, watcher := range []string{"no-op-subscriber", "dashboard"} {
		s, err := pipeline.New(pipeline.Config{Breaker: &breaker.Config{FailureThreshold: 1 << 30, RequestTimeout: -1}})
		if err != nil {
			b.Fatal(err)
		}
		if watcher == "dashboard" {
			d, err := dashboard.New(dashboard.Config{Stack: s})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
		} else {
			defer s.Subscribe(func(bulwark.Event) {})()
		}
		ctx := context.Background()
		for name, fn := range map[string]bulwark.Func[int]{"success": ok, "failure": bad} {
			b.Run(watcher+"/"+name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					pipeline.Do(ctx, s, "notion", fn)
				}
			})
		}
	}
}

// BenchmarkSnapshot measures one snapshot as a stream sends it: 20
// executors and a full ring of 50 events, encoded as JSON.
func BenchmarkSnapshot(b *testing.B) {
	s, err := pipeline.New(pipeline.Config{Breaker: &breaker.Config{FailureThreshold: 1 << 30}})
	if err != nil {
		b.Fatal(err)
	}
	d, err := dashboard.New(dashboard.Config{Stack: s})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	for i := range 20 {
		name := string(rune('a'+i)) + "-service"
		for range 3 {
			pipeline.Do(context.Background(), s, name, func(context.Context) (int, error) { return 0, errDown })
		}
	}
	if n := len(d.Snapshot().Events); n != dashboard.DefaultEvents {
		b.Fatalf("%d events, want a full ring", n)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(d.Snapshot()); err != nil {
			b.Fatal(err)
		}
	}
}
