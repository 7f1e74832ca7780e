package breaker

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

// The hot words must not share cache lines with what other cores write.
func TestLayout(t *testing.T) {
	var b Breaker
	assert.Equal(t, uintptr(cacheLine), unsafe.Offsetof(b.readMostly))
	assert.Zero(t, unsafe.Offsetof(b.salt)%cacheLine)
	assert.GreaterOrEqual(t, unsafe.Offsetof(b.salt)-unsafe.Offsetof(b.readMostly), unsafe.Sizeof(b.readMostly))
	assert.Equal(t, unsafe.Offsetof(b.salt)+cacheLine, unsafe.Offsetof(b.nextAttempt))
	assert.Equal(t, uintptr(cacheLine), unsafe.Sizeof(stripe{}))
}
