package bulkhead_test

import (
	"context"
	"testing"

	"github.com/bulwark-go/bulwark/bulkhead"
)

// BenchmarkAcquireRelease: the uncontended two-step path (a free slot,
// nobody waiting). Target: ≤ 30 ns, 0 allocs.
func BenchmarkAcquireRelease(b *testing.B) {
	bh, _ := bulkhead.New("svc", bulkhead.Config{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		release, err := bh.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		release()
	}
}

// BenchmarkDo: Do around a trivial function.
func BenchmarkDo(b *testing.B) {
	bh, _ := bulkhead.New("svc", bulkhead.Config{})
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 1, nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bulkhead.Do(ctx, bh, fn); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAcquireReleaseParallel: every P acquires and releases with
// enough slots for all (the state word is shared, nobody waits).
func BenchmarkAcquireReleaseParallel(b *testing.B) {
	bh, _ := bulkhead.New("svc", bulkhead.Config{MaxConcurrent: 1 << 20})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			release, err := bh.Acquire(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			release()
		}
	})
}

// BenchmarkContendedParallel: every P goes through a bulkhead with 4
// slots and a queue for the rest, so most calls wait and are handed a
// slot.
func BenchmarkContendedParallel(b *testing.B) {
	bh, _ := bulkhead.New("svc", bulkhead.Config{MaxConcurrent: 4, MaxWaiting: 1 << 16})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			release, err := bh.Acquire(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			release()
		}
	})
}

// BenchmarkRejectParallel: every P is refused by a full bulkhead without
// a queue.
func BenchmarkRejectParallel(b *testing.B) {
	bh, _ := bulkhead.New("svc", bulkhead.Config{MaxConcurrent: 1})
	ctx := context.Background()
	if _, err := bh.Acquire(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := bh.Acquire(ctx); err == nil {
				b.Error("admitted")
				return
			}
		}
	})
}
