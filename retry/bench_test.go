package retry_test

import (
	"context"
	"testing"

	"github.com/cenkalti/backoff/v4"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/retry"
)

// Baselines: the bare call, and the report lookup Do makes on every call.

func BenchmarkBareCall(b *testing.B) {
	fn := bulwark.Func[int](func(context.Context) (int, error) { return 1, nil })
	ctx := context.Background()
	for b.Loop() {
		_, _ = fn(ctx)
	}
}

func BenchmarkReportSetAttempts(b *testing.B) {
	b.Run("background", func(b *testing.B) {
		ctx := context.Background()
		for b.Loop() {
			bulwark.ReportFrom(ctx).SetAttempts(1)
		}
	})
	b.Run("report", func(b *testing.B) {
		ctx, _ := bulwark.WithReport(context.Background())
		for b.Loop() {
			bulwark.ReportFrom(ctx).SetAttempts(1)
		}
	})
}

// First-try success: the hot path.

func BenchmarkDoFirstTrySuccess(b *testing.B) {
	r, _ := retry.New(retry.Config{})
	fn := func(context.Context) (int, error) { return 1, nil }
	b.Run("background", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			_, _ = retry.Do(ctx, r, fn)
		}
	})
	b.Run("report", func(b *testing.B) {
		ctx, _ := bulwark.WithReport(context.Background())
		b.ReportAllocs()
		for b.Loop() {
			_, _ = retry.Do(ctx, r, fn)
		}
	})
	b.Run("budget", func(b *testing.B) {
		rb, _ := retry.New(retry.Config{Budget: &retry.Budget{}})
		ctx, _ := bulwark.WithReport(context.Background())
		b.ReportAllocs()
		for b.Loop() {
			_, _ = retry.Do(ctx, rb, fn)
		}
	})
	b.Run("budget/parallel", func(b *testing.B) {
		rb, _ := retry.New(retry.Config{Budget: &retry.Budget{}})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx, _ := bulwark.WithReport(context.Background())
			for pb.Next() {
				_, _ = retry.Do(ctx, rb, fn)
			}
		})
	})
	b.Run("middleware", func(b *testing.B) {
		call := retry.Middleware[int](r)(fn)
		ctx, _ := bulwark.WithReport(context.Background())
		b.ReportAllocs()
		for b.Loop() {
			_, _ = call(ctx)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx, _ := bulwark.WithReport(context.Background())
			for pb.Next() {
				_, _ = retry.Do(ctx, r, fn)
			}
		})
	})
}

// The same work done with backoff/v4 directly, as a call site would write
// it: a fresh ExponentialBackOff per call.
func BenchmarkBackoffFirstTrySuccess(b *testing.B) {
	op := func() (int, error) { return 1, nil }
	b.ReportAllocs()
	for b.Loop() {
		_, _ = backoff.RetryWithData(op, backoff.NewExponentialBackOff())
	}
}

// Fail twice then succeed, with zero waits: the cost of the retry loop
// itself.

func BenchmarkDoFailTwiceZeroWait(b *testing.B) {
	r, _ := retry.New(retry.Config{NoWait: true})
	ctx := context.Background()
	n := 0
	fn := func(context.Context) (int, error) {
		n++
		if n%3 != 0 {
			return 0, errBoom
		}
		return 1, nil
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := retry.Do(ctx, r, fn); err != nil {
			b.Fatal(err)
		}
	}
}

// The same work with backoff.RetryWithData: at most three attempts
// (WithMaxRetries 2), no wait (ZeroBackOff), stopping when ctx is done
// (WithContext).
func BenchmarkBackoffFailTwiceZeroWait(b *testing.B) {
	ctx := context.Background()
	n := 0
	op := func() (int, error) {
		n++
		if n%3 != 0 {
			return 0, errBoom
		}
		return 1, nil
	}
	b.ReportAllocs()
	for b.Loop() {
		policy := backoff.WithContext(backoff.WithMaxRetries(&backoff.ZeroBackOff{}, 2), ctx)
		if _, err := backoff.RetryWithData(op, policy); err != nil {
			b.Fatal(err)
		}
	}
}
