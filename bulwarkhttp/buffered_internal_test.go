package bulwarkhttp

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBufferPoolSizes(t *testing.T) {
	var p bufferPool
	for _, size := range []int{0, 1, 511, 512, 513, 1025, 4096, 65535, 65536, 65537, 1 << 20} {
		box := p.get(size)
		require.NotNil(t, box, "size %d", size)
		assert.Empty(t, *box, "size %d", size)
		assert.GreaterOrEqual(t, cap(*box), size, "size %d", size)
		assert.LessOrEqual(t, cap(*box), max(2*size, minBuffer), "size %d: at most twice the room asked for", size)
		*box = append(*box, "dirty"...)
		p.put(box)
	}
	for range 10 { // whatever the pool hands back is empty and big enough
		box := p.get(1025)
		assert.Empty(t, *box)
		assert.GreaterOrEqual(t, cap(*box), 1025)
	}
}

// A body on loan from the pool: reads after Close fail, and the buffer
// goes back only once nothing reads it, even when Close comes while
// WriteTo is writing from it.
func TestBufferedBodyGivesItsBufferBackOnce(t *testing.T) {
	var p bufferPool
	newBody := func(s string) *bufferedBody {
		box := p.get(len(s))
		*box = append(*box, s...)
		return &bufferedBody{buf: *box, pool: &p, box: box}
	}

	b := newBody("hello")
	got := make([]byte, 2)
	n, err := b.Read(got)
	require.NoError(t, err)
	assert.Equal(t, "he", string(got[:n]))
	require.NoError(t, b.Close())
	assert.Nil(t, b.box, "given back")
	_, err = b.Read(got)
	assert.ErrorIs(t, err, errBodyClosed)
	_, err = b.WriteTo(io.Discard)
	assert.ErrorIs(t, err, errBodyClosed)
	require.NoError(t, b.Close(), "a second Close is harmless")

	b = newBody("hello, world")
	w := &closingWriter{body: b}
	n64, err := b.WriteTo(w)
	require.NoError(t, err)
	assert.Equal(t, int64(12), n64)
	assert.Equal(t, "hello, world", w.got, "the bytes as they were when Write returned")
	assert.True(t, w.lentDuringWrite, "not given back while Write ran")
	assert.Nil(t, b.box, "given back when WriteTo ended")
}

// closingWriter closes the body it is written from in the middle of the
// Write, and then checks that the buffer is still on loan to it.
type closingWriter struct {
	body            *bufferedBody
	got             string
	lentDuringWrite bool
}

func (w *closingWriter) Write(p []byte) (int, error) {
	_ = w.body.Close()
	w.lentDuringWrite = w.body.box != nil
	w.got = string(p)
	return len(p), nil
}

// The error met while buffering a failed status ends the body, through
// Read and through WriteTo (io.Copy's path) alike.
func TestBufferedBodyEndsWithTheBufferingError(t *testing.T) {
	cut := errors.New("connection reset")
	var out bytes.Buffer
	n, err := io.Copy(&out, &bufferedBody{buf: []byte("partial"), err: cut})
	assert.ErrorIs(t, err, cut, "WriteTo")
	assert.Equal(t, int64(7), n)
	got, err := io.ReadAll(struct{ io.Reader }{&bufferedBody{buf: []byte("partial"), err: cut}})
	assert.ErrorIs(t, err, cut, "Read")
	assert.Equal(t, "partial", string(got))
	n, err = io.Copy(&out, &bufferedBody{buf: []byte("all")})
	assert.NoError(t, err)
	assert.Equal(t, int64(3), n)
}
