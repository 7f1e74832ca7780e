package pipeline_test

import (
	"context"
	"math"
	"testing"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/cache"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/ratelimit"
	"github.com/bulwark-go/bulwark/retry"
	"github.com/bulwark-go/bulwark/rollback"
)

type page struct {
	ID    string
	Title string
}

var thePage = &page{ID: "p1", Title: "Roadmap"}

// fullStack is every layer but idempotency, with the breaker's request
// timeout disabled: fallback → breaker → retry → rollback → fn.
func fullStack() pipeline.Config {
	return pipeline.Config{
		Fallback: &pipeline.FallbackConfig{},
		Breaker:  &breaker.Config{RequestTimeout: -1},
		Retry:    &retry.Config{},
		Rollback: &rollback.Config{},
	}
}

// loadStack is fullStack with the load layers on as well: a bulkhead, a
// rate limiter that never makes a call wait (Rate +Inf) and a retry
// budget. Timeouts stay off: fallback → breaker → retry (budgeted) →
// bulkhead → ratelimit → rollback → fn.
func loadStack() pipeline.Config {
	cfg := fullStack()
	cfg.Retry.Budget = &retry.Budget{}
	cfg.Bulkhead = &bulkhead.Config{MaxConcurrent: 1 << 20}
	cfg.RateLimit = &ratelimit.Config{Rate: math.Inf(1)}
	return cfg
}

// everyLayer is loadStack with the idempotency layer on too (the calls
// carry no key, so it passes them through).
func everyLayer() pipeline.Config {
	cfg := loadStack()
	cfg.Idempotency = &pipeline.IdempotencyConfig{}
	return cfg
}

func benchStack(b *testing.B, cfg pipeline.Config) *pipeline.Stack {
	s, err := pipeline.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func getPage(context.Context) (*page, error)   { return thePage, nil }
func getTitle(context.Context) (string, error) { return "Roadmap", nil }

func BenchmarkStack(b *testing.B) {
	ctx := context.Background()
	b.Run("full-no-idempotency-no-timeout/Do", func(b *testing.B) {
		s := benchStack(b, fullStack())
		b.ReportAllocs()
		for b.Loop() {
			if v, err := pipeline.Do(ctx, s, "notion", getPage, pipeline.Operation("get-page")); err != nil || v != thePage {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("full-no-idempotency-no-timeout/Do/parallel", func(b *testing.B) {
		s := benchStack(b, fullStack())
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if v, err := pipeline.Do(ctx, s, "notion", getPage, pipeline.Operation("get-page")); err != nil || v != thePage {
					b.Fatal(v, err)
				}
			}
		})
	})
	for _, v := range []struct {
		name string
		cfg  func() pipeline.Config
	}{{"load-layers-no-timeout", loadStack}, {"every-layer-no-timeout", everyLayer}} {
		b.Run(v.name+"/Do", func(b *testing.B) {
			s := benchStack(b, v.cfg())
			b.ReportAllocs()
			for b.Loop() {
				if p, err := pipeline.Do(ctx, s, "notion", getPage, pipeline.Operation("get-page")); err != nil || p != thePage {
					b.Fatal(p, err)
				}
			}
		})
		b.Run(v.name+"/Do/parallel", func(b *testing.B) {
			s := benchStack(b, v.cfg())
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if p, err := pipeline.Do(ctx, s, "notion", getPage, pipeline.Operation("get-page")); err != nil || p != thePage {
						b.Fatal(p, err)
					}
				}
			})
		})
		b.Run(v.name+"/Middleware", func(b *testing.B) {
			s := benchStack(b, v.cfg())
			fn := pipeline.Middleware[*page](s, "notion", pipeline.Operation("get-page"))(getPage)
			b.ReportAllocs()
			for b.Loop() {
				if p, err := fn(ctx); err != nil || p != thePage {
					b.Fatal(p, err)
				}
			}
		})
		b.Run(v.name+"/Middleware/parallel", func(b *testing.B) {
			s := benchStack(b, v.cfg())
			fn := pipeline.Middleware[*page](s, "notion", pipeline.Operation("get-page"))(getPage)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if p, err := fn(ctx); err != nil || p != thePage {
						b.Fatal(p, err)
					}
				}
			})
		})
	}
	b.Run("full-no-idempotency-no-timeout/Do/string-result", func(b *testing.B) {
		s := benchStack(b, fullStack())
		b.ReportAllocs()
		for b.Loop() {
			if v, err := pipeline.Do(ctx, s, "notion", getTitle, pipeline.Operation("get-title")); err != nil || v != "Roadmap" {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("full-no-idempotency-no-timeout/Execute", func(b *testing.B) {
		s := benchStack(b, fullStack())
		b.ReportAllocs()
		for b.Loop() {
			if r := pipeline.Execute(ctx, s, "notion", getPage, pipeline.Operation("get-page")); r.Err != nil || r.Value != thePage || r.Attempts != 1 {
				b.Fatal(r)
			}
		}
	})
	b.Run("full-no-idempotency-no-timeout/Middleware", func(b *testing.B) {
		s := benchStack(b, fullStack())
		fn := pipeline.Middleware[*page](s, "notion", pipeline.Operation("get-page"))(getPage)
		b.ReportAllocs()
		for b.Loop() {
			if v, err := fn(ctx); err != nil || v != thePage {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("fallback-breaker-retry-no-timeout/Middleware", func(b *testing.B) {
		cfg := fullStack()
		cfg.Rollback = nil
		s := benchStack(b, cfg)
		fn := pipeline.Middleware[*page](s, "notion", pipeline.Operation("get-page"))(getPage)
		b.ReportAllocs()
		for b.Loop() {
			if v, err := fn(ctx); err != nil || v != thePage {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("fallback-breaker-retry-no-timeout/Do", func(b *testing.B) {
		cfg := fullStack()
		cfg.Rollback = nil
		s := benchStack(b, cfg)
		b.ReportAllocs()
		for b.Loop() {
			if v, err := pipeline.Do(ctx, s, "notion", getPage, pipeline.Operation("get-page")); err != nil || v != thePage {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("breaker-only-no-timeout/Do", func(b *testing.B) {
		s := benchStack(b, pipeline.Config{Breaker: &breaker.Config{RequestTimeout: -1}})
		b.ReportAllocs()
		for b.Loop() {
			if v, err := pipeline.Do(ctx, s, "notion", getPage); err != nil || v != thePage {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("default-Reliable/Do", func(b *testing.B) {
		s := benchStack(b, pipeline.Reliable())
		b.ReportAllocs()
		for b.Loop() {
			if v, err := pipeline.Do(ctx, s, "notion", getPage); err != nil || v != thePage {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("default-Unreliable/Do", func(b *testing.B) {
		s := benchStack(b, pipeline.Unreliable())
		b.ReportAllocs()
		for b.Loop() {
			if v, err := pipeline.Do(ctx, s, "notion", getPage, pipeline.Operation("get-page")); err != nil || v != thePage {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("idempotency-replay/Do", func(b *testing.B) {
		s := benchStack(b, pipeline.Reliable())
		if _, err := pipeline.Do(ctx, s, "notion", getPage, pipeline.IdempotencyKey("create-page-1")); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if v, err := pipeline.Do(ctx, s, "notion", getPage, pipeline.IdempotencyKey("create-page-1")); err != nil || v != thePage {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("idempotency-replay/Execute", func(b *testing.B) {
		s := benchStack(b, pipeline.Reliable())
		if _, err := pipeline.Do(ctx, s, "notion", getPage, pipeline.IdempotencyKey("create-page-1")); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if r := pipeline.Execute(ctx, s, "notion", getPage, pipeline.IdempotencyKey("create-page-1")); !r.Replayed || r.Value != thePage {
				b.Fatal(r)
			}
		}
	})
	b.Run("open-rejection-from-cache/Do", func(b *testing.B) {
		cfg := fullStack()
		s := benchStack(b, cfg)
		if _, err := pipeline.Do(ctx, s, "notion", getPage, pipeline.Operation("get-page")); err != nil {
			b.Fatal(err)
		}
		s.Breaker("notion").ForceOpen()
		b.ReportAllocs()
		for b.Loop() {
			if v, err := pipeline.Do(ctx, s, "notion", getPage, pipeline.Operation("get-page")); err != nil || v != thePage {
				b.Fatal(v, err)
			}
		}
	})
	_ = cache.OnlyRejections
}
