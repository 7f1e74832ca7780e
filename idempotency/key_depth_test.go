package idempotency

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// list returns a linked list of n nodes.
func list(n int) *node {
	var head *node
	for range n {
		head = &node{Name: "n", Next: head}
	}
	return head
}

// TestKeyDepthLimit is issue 14's item 8: Key of a linked list 1,000,000
// nodes deep used to overflow the stack, which kills the process.
func TestKeyDepthLimit(t *testing.T) {
	nestedAny := any(nil) // []any{[]any{...}}: an interface and a slice per level
	for range 1_000_000 {
		nestedAny = []any{nestedAny}
	}
	nestedArray := any(nil) // [1]any{[1]any{...}}: no pointer anywhere
	for range 100_000 {
		nestedArray = [1]any{nestedArray}
	}
	nestedMap := any(nil)
	for range 100_000 {
		nestedMap = map[string]any{"m": nestedMap}
	}
	for name, part := range map[string]any{
		"list of 1e6 nodes":  list(1_000_000),
		"1e6 nested []any":   nestedAny,
		"1e5 nested [1]any":  nestedArray,
		"1e5 nested maps":    nestedMap,
		"list one too deep":  list(MaxKeyDepth + 1),
		"in a struct field":  struct{ L *node }{list(MaxKeyDepth + 5)},
		"as the second part": list(2 * MaxKeyDepth),
	} {
		t.Run(name, func(t *testing.T) {
			k, err := Key("ns", part)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidKeyPart)
			assert.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), "nested more than MaxKeyDepth (1000) levels deep")
			assert.Contains(t, err.Error(), "part 1")
			assert.Less(t, len(err.Error()), 300, "error: %s", err)
			assert.Empty(t, k)
		})
	}
	// At the limit exactly, a value is fine.
	_, err := Key(list(MaxKeyDepth))
	require.NoError(t, err)
}

// TestKeyCyclicErrorIsShort: the error of a cyclic value used to repeat the
// path to it, a thousand levels long (about 5 KB).
func TestKeyCyclicErrorIsShort(t *testing.T) {
	cyclic := &node{Name: "a"}
	cyclic.Next = cyclic
	cyclicMap := map[string]any{}
	cyclicMap[strings.Repeat("long key ", 20)] = cyclicMap
	cyclicSlice := []any{nil}
	cyclicSlice[0] = cyclicSlice
	for name, part := range map[string]any{"pointer": cyclic, "map": cyclicMap, "slice": cyclicSlice} {
		t.Run(name, func(t *testing.T) {
			_, err := Key(part)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidKeyPart)
			assert.Contains(t, err.Error(), "cyclic value of type")
			assert.Contains(t, err.Error(), "more levels)")
			assert.Less(t, len(err.Error()), 300, "error: %s", err)
			t.Log(err)
		})
	}
}
