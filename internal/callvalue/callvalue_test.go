package callvalue_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/bulwark-go/bulwark/internal/callvalue"
)

type perCallKey struct{}

func (perCallKey) PerCallKey() {}

type otherKey struct{}

// node is a per-call value in the way the layers attach theirs.
type node struct {
	context.Context
	v string
}

func (n *node) Value(k any) any {
	switch k.(type) {
	case perCallKey, callvalue.Marker:
		return n
	}
	return n.Context.Value(k)
}

func TestHideWithoutPerCallValueReturnsCtxAndAllocatesNothing(t *testing.T) {
	ctx := context.WithValue(context.Background(), otherKey{}, "trace")
	assert.Equal(t, ctx, callvalue.Hide(ctx))
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = callvalue.Hide(ctx) }))
}

func TestHideHidesOuterValueKeepsOthersAndNestedOnes(t *testing.T) {
	base := context.WithValue(context.Background(), otherKey{}, "trace")
	outer := &node{Context: base, v: "outer"}
	fnCtx := callvalue.Hide(outer)
	assert.Nil(t, fnCtx.Value(perCallKey{}), "the outer call's value reached its function")
	assert.Nil(t, fnCtx.Value(callvalue.Marker{}))
	assert.Equal(t, "trace", fnCtx.Value(otherKey{}), "other values are kept")
	assert.Same(t, fnCtx, callvalue.Hide(fnCtx), "nothing left to hide")

	nested := &node{Context: fnCtx, v: "nested"}
	assert.Equal(t, "nested", nested.Value(perCallKey{}).(*node).v, "a value attached for a nested call is found")
}
