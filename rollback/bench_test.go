package rollback_test

import (
	"context"
	"testing"

	"github.com/bulwark-go/bulwark/rollback"
)

func BenchmarkMiddleware(b *testing.B) {
	ctx := context.Background()
	undo := func(context.Context) error { return nil }
	register3 := func(ctx context.Context) {
		_ = rollback.OnRollback(ctx, "a", undo)
		_ = rollback.OnRollback(ctx, "b", undo)
		_ = rollback.OnRollback(ctx, "c", undo)
	}
	mw := rollback.Middleware[int]()

	b.Run("success/no-registrations", func(b *testing.B) {
		fn := mw(func(context.Context) (int, error) { return 1, nil })
		b.ReportAllocs()
		for b.Loop() {
			_, _ = fn(ctx)
		}
	})
	b.Run("success/3-registrations", func(b *testing.B) {
		fn := mw(func(ctx context.Context) (int, error) {
			register3(ctx)
			return 1, nil
		})
		b.ReportAllocs()
		for b.Loop() {
			_, _ = fn(ctx)
		}
	})
	b.Run("failure/3-compensations", func(b *testing.B) {
		fn := mw(func(ctx context.Context) (int, error) {
			register3(ctx)
			return 0, errCall
		})
		b.ReportAllocs()
		for b.Loop() {
			_, _ = fn(ctx)
		}
	})
	b.Run("success/parallel", func(b *testing.B) {
		fn := mw(func(ctx context.Context) (int, error) {
			register3(ctx)
			return 1, nil
		})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = fn(ctx)
			}
		})
	})
}

func BenchmarkDo(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = rollback.Do(ctx, func(context.Context) (int, error) { return 1, nil })
	}
}

func BenchmarkSaga(b *testing.B) {
	type state struct{ a, b, c int }
	undo := func(context.Context, *state) error { return nil }
	steps := []rollback.Step[state]{
		{Name: "a", Do: func(_ context.Context, s *state) error { s.a = 1; return nil }, Undo: undo},
		{Name: "b", Do: func(_ context.Context, s *state) error { s.b = 2; return nil }, Undo: undo},
		{Name: "c", Do: func(_ context.Context, s *state) error { s.c = 3; return nil }, Undo: undo},
	}
	ctx := context.Background()
	b.Run("success/3-steps", func(b *testing.B) {
		saga, err := rollback.NewSaga(steps)
		if err != nil {
			b.Fatal(err)
		}
		var s state
		b.ReportAllocs()
		for b.Loop() {
			_ = saga.Run(ctx, &s)
		}
	})
	b.Run("failure/3-compensations", func(b *testing.B) {
		failing := append(steps[:3:3], rollback.Step[state]{
			Name: "d", Do: func(context.Context, *state) error { return errCall },
		})
		saga, err := rollback.NewSaga(failing)
		if err != nil {
			b.Fatal(err)
		}
		var s state
		b.ReportAllocs()
		for b.Loop() {
			_ = saga.Run(ctx, &s)
		}
	})
}
