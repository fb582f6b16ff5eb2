package hypercall

import (
	"errors"
	"fmt"
	"unsafe"
)

// PageSize is the granularity of hypercall buffers (x86).
const PageSize = 4096

// ErrBufferClosed is returned by operations on a closed [Buffer].
var ErrBufferClosed = errors.New("hypercall: buffer closed")

// Buffer is memory the hypervisor may read and write during a hypercall:
// resident, writable, and never moved. Allocate it with [Caller.Alloc].
//
// A Buffer is not safe for concurrent use: a caller that shares one must
// serialise the calls that use it.
type Buffer struct {
	mem  []byte
	free func([]byte) error
}

// NewBuffer wraps mem, which the caller guarantees to be suitable for
// hypercalls, in a Buffer; free is called once by Close. It is meant for
// [Caller] implementations.
func NewBuffer(mem []byte, free func([]byte) error) *Buffer {
	return &Buffer{mem: mem, free: free}
}

// Bytes returns the whole buffer. The slice is invalid after Close.
func (b *Buffer) Bytes() []byte { return b.mem }

// Len returns the buffer's size in bytes.
func (b *Buffer) Len() int { return len(b.mem) }

// Addr returns the address of the first byte, as passed to Xen.
func (b *Buffer) Addr() uint64 {
	if len(b.mem) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(&b.mem[0])))
}

// AddrAt returns the address of byte off.
func (b *Buffer) AddrAt(off int) uint64 { return b.Addr() + uint64(off) }

// Zero clears the buffer.
func (b *Buffer) Zero() { clear(b.mem) }

// Close releases the memory. It is safe to call more than once.
func (b *Buffer) Close() error {
	if b.mem == nil {
		return nil
	}
	mem := b.mem
	b.mem = nil
	if b.free != nil {
		return b.free(mem)
	}
	return nil
}

// View returns a *T that aliases the buffer at byte offset off. T must be
// one of this package's C-layout structs (no Go pointers). It fails if the
// struct does not fit or the offset is misaligned for T.
func View[T any](b *Buffer, off int) (*T, error) {
	if b == nil || b.mem == nil {
		return nil, ErrBufferClosed
	}
	return ViewBytes[T](b.mem, off)
}

// ViewBytes is [View] on a plain byte slice, for Caller implementations
// that resolve an address to memory themselves.
func ViewBytes[T any](mem []byte, off int) (*T, error) {
	var zero T
	size := int(unsafe.Sizeof(zero))
	if off < 0 || off > len(mem) || len(mem)-off < size {
		return nil, fmt.Errorf("hypercall: %T of %d bytes does not fit at offset %d of a %d-byte buffer", zero, size, off, len(mem))
	}
	p := unsafe.Pointer(&mem[off])
	if uintptr(p)%unsafe.Alignof(zero) != 0 {
		return nil, fmt.Errorf("hypercall: %T at offset %d is misaligned", zero, off)
	}
	return (*T)(p), nil
}

func pageRound(n int) int { return (n + PageSize - 1) &^ (PageSize - 1) }

// SizeOf returns the size in bytes of the C-layout struct T.
func SizeOf[T any]() int {
	var zero T
	return int(unsafe.Sizeof(zero))
}
