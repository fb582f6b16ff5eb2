package nbd

import (
	"math/bits"
	"sync"
)

// Buffer size classes: powers of two from 4 KiB to 32 MiB.
const (
	minBufClass = 12
	maxBufClass = 25
)

// bufPool recycles payload buffers by power-of-two size class, so the
// steady-state request path does not allocate.
type bufPool struct {
	classes [maxBufClass + 1]sync.Pool // *[]byte of exactly 1<<class bytes
}

func bufClass(n int) int {
	if n <= 1<<minBufClass {
		return minBufClass
	}
	return bits.Len(uint(n - 1))
}

// get returns a buffer of at least n bytes.
func (p *bufPool) get(n int) *[]byte {
	c := bufClass(n)
	if c > maxBufClass {
		b := make([]byte, n)
		return &b
	}
	if v := p.classes[c].Get(); v != nil {
		return v.(*[]byte)
	}
	b := make([]byte, 1<<c)
	return &b
}

func (p *bufPool) put(b *[]byte) {
	if b == nil {
		return
	}
	n := cap(*b)
	c := bufClass(n)
	if c > maxBufClass || n != 1<<c {
		return
	}
	*b = (*b)[:n]
	p.classes[c].Put(b)
}
