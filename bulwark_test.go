package bulwark_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
)

// trace returns a middleware that appends "name>" when the call enters it
// and "<name" when the result leaves it.
func trace(log *[]string, name string) bulwark.Middleware[int] {
	return func(next bulwark.Func[int]) bulwark.Func[int] {
		return func(ctx context.Context) (int, error) {
			*log = append(*log, name+">")
			v, err := next(ctx)
			*log = append(*log, "<"+name)
			return v, err
		}
	}
}

func TestChainOrder(t *testing.T) {
	var log []string
	fn := bulwark.Chain(trace(&log, "a"), trace(&log, "b"), trace(&log, "c"))(
		func(context.Context) (int, error) {
			log = append(log, "fn")
			return 7, nil
		})

	v, err := fn(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 7, v)
	assert.Equal(t, []string{"a>", "b>", "c>", "fn", "<c", "<b", "<a"}, log)
}

func TestChainEmptyIsIdentity(t *testing.T) {
	wantErr := errors.New("boom")
	calls := 0
	fn := func(context.Context) (int, error) { calls++; return 3, wantErr }

	v, err := bulwark.Chain[int]()(fn)(t.Context())
	assert.Equal(t, 3, v)
	assert.ErrorIs(t, err, wantErr)
	assert.Equal(t, 1, calls)
}

func TestChainSkipsNil(t *testing.T) {
	var log []string
	fn := bulwark.Chain(nil, trace(&log, "a"), nil)(func(context.Context) (int, error) { return 1, nil })
	_, err := fn(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{"a>", "<a"}, log)
}

func TestChainCopiesInput(t *testing.T) {
	var log []string
	mws := []bulwark.Middleware[int]{trace(&log, "a"), trace(&log, "b")}
	chain := bulwark.Chain(mws...)
	mws[0] = trace(&log, "x") // must not change the chain

	_, err := chain(func(context.Context) (int, error) { return 0, nil })(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{"a>", "b>", "<b", "<a"}, log)
}

func TestChainPassesContext(t *testing.T) {
	type key struct{}
	setter := func(next bulwark.Func[string]) bulwark.Func[string] {
		return func(ctx context.Context) (string, error) {
			return next(context.WithValue(ctx, key{}, "from outer"))
		}
	}
	fn := bulwark.Chain(setter)(func(ctx context.Context) (string, error) {
		s, _ := ctx.Value(key{}).(string)
		return s, nil
	})
	v, err := fn(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "from outer", v)
}

func noop[T any](next bulwark.Func[T]) bulwark.Func[T] {
	return func(ctx context.Context) (T, error) { return next(ctx) }
}

func TestChainCallAllocatesNothing(t *testing.T) {
	fn := bulwark.Chain(noop[int], noop[int], noop[int], noop[int])(
		func(context.Context) (int, error) { return 1, nil })
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		if v, err := fn(ctx); v != 1 || err != nil {
			t.Fatalf("got %d, %v", v, err)
		}
	})
	assert.Zero(t, allocs)
}

func BenchmarkChain(b *testing.B) {
	fn := bulwark.Chain(noop[int], noop[int], noop[int], noop[int])(
		func(context.Context) (int, error) { return 1, nil })
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if v, err := fn(ctx); v != 1 || err != nil {
			b.Fatalf("got %d, %v", v, err)
		}
	}
}
