package bulwarkhttp

import (
	"errors"
	"io"
	"math/bits"
	"sync"
)

// errBodyClosed is what reading a buffered body after Close returns, as
// reading any closed response body fails.
var errBodyClosed = errors.New("bulwarkhttp: read on closed response body")

// bufferedBody is a response body read from memory: what is left of buf,
// then err (a read error met while buffering a failed status) or io.EOF.
//
// Its buffer may be on loan from the Transport's pool (pool is then set):
// Close gives it back, so reads after Close fail, and Read, WriteTo and
// Close synchronize so that a buffer is never given back while being
// read. Read and WriteTo are not safe for concurrent use with each other
// (as for any body); Close may be called at any time.
type bufferedBody struct {
	buf []byte // the bytes not yet read
	err error  // immutable

	pool *bufferPool // nil: the buffer is not on loan
	box  *[]byte     // the buffer on loan, which goes back to the pool

	mu     sync.Mutex
	closed bool
	busy   bool // a WriteTo is writing from buf without holding mu
}

func (b *bufferedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return 0, errBodyClosed
	case len(b.buf) > 0:
		n := copy(p, b.buf)
		b.buf = b.buf[n:]
		return n, nil
	case b.err != nil:
		return 0, b.err
	}
	return 0, io.EOF
}

// WriteTo writes the rest of the body to w (io.Copy's fast path), without
// holding mu while w writes: a Close meanwhile gives the buffer back once
// w is done with it.
func (b *bufferedBody) WriteTo(w io.Writer) (int64, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return 0, errBodyClosed
	}
	rest := b.buf
	b.busy = true
	b.mu.Unlock()

	n, err := 0, error(nil)
	if len(rest) > 0 {
		n, err = w.Write(rest)
		switch {
		case n < 0 || n > len(rest):
			n, err = 0, errors.New("bulwarkhttp: invalid Write count")
		case n < len(rest) && err == nil:
			err = io.ErrShortWrite
		}
	}

	b.mu.Lock()
	b.buf = b.buf[n:]
	b.busy = false
	giveBack := b.closed
	b.mu.Unlock()
	if giveBack {
		b.giveBack()
	}
	if err == nil {
		err = b.err
	}
	return int64(n), err
}

// Close ends the body and gives its buffer back to the pool, now or,
// while a WriteTo writes from it, when that ends.
func (b *bufferedBody) Close() error {
	b.mu.Lock()
	giveBack := !b.closed && !b.busy
	b.closed = true
	b.mu.Unlock()
	if giveBack {
		b.giveBack()
	}
	return nil
}

// giveBack returns the buffer to the pool, if it is on loan. Called once,
// when the body is closed and nothing reads buf.
func (b *bufferedBody) giveBack() {
	if b.pool != nil {
		b.pool.put(b.box)
	}
	b.buf, b.pool, b.box = nil, nil, nil
}

// Buffers of the pool: minBuffer << k bytes for each class k below
// bufferClasses, 512 B to 64 KiB.
const (
	minBuffer     = 512
	bufferClasses = 8
)

// bufferPool keeps the buffers that response bodies are read into, so
// that a request answered with a body of up to 64 KiB allocates no buffer
// once the pool has one: the caller's Close gives it back. Each class k
// holds *[]byte with a capacity of at least minBuffer << k. A body kept
// by the idempotency or fallback layer, or never closed, keeps its buffer
// (the garbage collector reclaims it), and so does the pool's content at
// each collection, as any sync.Pool's. The zero value is ready to use;
// it is safe for concurrent use.
type bufferPool [bufferClasses]sync.Pool

// get returns an empty buffer with room for at least size bytes, in a box
// to give it back in.
func (p *bufferPool) get(size int) *[]byte {
	k := 0
	if size > minBuffer {
		k = bits.Len(uint(size-1) / minBuffer)
	}
	if k >= bufferClasses {
		b := make([]byte, 0, size)
		return &b
	}
	if box, _ := p[k].Get().(*[]byte); box != nil {
		return box
	}
	b := make([]byte, 0, minBuffer<<k)
	return &b
}

// put gives a buffer back, emptied. Buffers outside the classes are left
// to the garbage collector.
func (p *bufferPool) put(box *[]byte) {
	c := cap(*box)
	if c < minBuffer || c >= minBuffer<<bufferClasses {
		return
	}
	*box = (*box)[:0]
	p[bits.Len(uint(c)/minBuffer)-1].Put(box)
}
