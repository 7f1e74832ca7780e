package cache

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/bulwark-go/bulwark"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The default predicate, alone and through the fallback, on a final
// answer, a rejection, a caller's cancellation and a plain error.
func TestDefaultWhen(t *testing.T) {
	notFound := bulwark.Final(errors.New("404 page not found"))
	cases := []struct {
		name  string
		err   error
		serve bool
	}{
		{"final answer", notFound, false},
		{"wrapped final answer", fmt.Errorf("get page: %w", notFound), false},
		{"rejection", rejection(), true},
		{"caller cancelled", context.Canceled, false},
		{"plain error", errDown, true},
		{"timeout", context.DeadlineExceeded, true},
	}
	for _, c := range cases {
		assert.Equal(t, c.serve, DefaultWhen(c.err), c.name)

		cache := newCache[string, page](t, Config{})
		svc := &service{value: page{"page 42", 1}}
		call := Fallback[page](cache, "get-page:42", FallbackConfig{})(svc.call)
		_, err := call(context.Background())
		require.NoError(t, err)

		svc.value, svc.err = page{}, c.err
		ctx, report := bulwark.WithReport(context.Background())
		v, err := call(ctx)
		if c.serve {
			assert.NoError(t, err, c.name)
			assert.Equal(t, page{"page 42", 1}, v, c.name)
			assert.True(t, report.FromCache(), c.name)
		} else {
			assert.ErrorIs(t, err, c.err, c.name)
			assert.Zero(t, v, c.name)
			assert.False(t, report.FromCache(), c.name)
		}
	}
}
