// Package hypercalltest provides a fake [hypercall.Caller] for tests: a
// function sees each hypercall's op number and arguments, and reads or
// writes the argument memory through a [Memory] that resolves addresses the
// way Xen does — only inside buffers allocated from the same Caller; any
// other address is EFAULT.
//
// It is the base the simulated hypervisor (package xensim) builds on, the
// way genltest sits on nltest.
package hypercalltest

import (
	"fmt"
	"sort"
	"sync"

	"github.com/xentmem/xentmem/hypercall"
)

// Func handles one hypercall. It returns Xen's non-negative result, or a
// [hypercall.Errno] for a negative one.
type Func func(op hypercall.Op, args hypercall.Args, mem *Memory) (uint64, error)

// Caller is a fake [hypercall.Caller] driven by a [Func]. It is safe for
// concurrent use if the Func is.
type Caller struct {
	fn  Func
	mem Memory
}

var _ hypercall.Caller = (*Caller)(nil)

// New returns a Caller that answers every hypercall with fn.
func New(fn Func) *Caller { return &Caller{fn: fn} }

// Hypercall calls the Func.
func (c *Caller) Hypercall(op hypercall.Op, args hypercall.Args) (uint64, error) {
	return c.fn(op, args, &c.mem)
}

// Alloc returns a zeroed, page-rounded buffer registered with the Memory.
func (c *Caller) Alloc(size int) (*hypercall.Buffer, error) {
	return c.mem.Alloc(size)
}

// Memory returns the Caller's argument memory.
func (c *Caller) Memory() *Memory { return &c.mem }

// Memory is the set of buffers Xen may touch. The zero value is ready.
type Memory struct {
	mu   sync.Mutex // guards bufs
	bufs []region   // sorted by addr
}

type region struct {
	addr uint64
	mem  []byte
}

// Alloc returns a registered buffer of size bytes (rounded up to pages).
func (m *Memory) Alloc(size int) (*hypercall.Buffer, error) {
	if size <= 0 {
		return nil, fmt.Errorf("hypercalltest: buffer size %d: %w", size, hypercall.EINVAL)
	}
	n := (size + hypercall.PageSize - 1) &^ (hypercall.PageSize - 1)
	mem, free, err := allocPages(n)
	if err != nil {
		return nil, fmt.Errorf("hypercalltest: buffer of %d bytes: %w", n, err)
	}
	b := hypercall.NewBuffer(mem[:size:size], func(b []byte) error {
		m.remove(b)
		return free()
	})
	m.mu.Lock()
	m.bufs = append(m.bufs, region{addr: b.Addr(), mem: mem})
	sort.Slice(m.bufs, func(i, j int) bool { return m.bufs[i].addr < m.bufs[j].addr })
	m.mu.Unlock()
	return b, nil
}

func (m *Memory) remove(b []byte) {
	if len(b) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	addr := hypercall.NewBuffer(b, nil).Addr()
	for i, r := range m.bufs {
		if r.addr == addr {
			m.bufs = append(m.bufs[:i], m.bufs[i+1:]...)
			return
		}
	}
}

// Live returns the number of buffers not yet closed.
func (m *Memory) Live() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.bufs)
}

// Bytes returns the n bytes at addr, or EFAULT when they are not all inside
// one live buffer. The slice aliases the buffer: writes reach the caller.
func (m *Memory) Bytes(addr uint64, n int) ([]byte, error) {
	if n < 0 {
		return nil, hypercall.EFAULT
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	i := sort.Search(len(m.bufs), func(i int) bool { return m.bufs[i].addr > addr }) - 1
	if i < 0 {
		return nil, hypercall.EFAULT
	}
	r := m.bufs[i]
	off := addr - r.addr
	if off > uint64(len(r.mem)) || uint64(len(r.mem))-off < uint64(n) {
		return nil, hypercall.EFAULT
	}
	return r.mem[off : off+uint64(n) : off+uint64(n)], nil
}

// View returns a *T aliasing the memory at addr, or EFAULT.
func View[T any](m *Memory, addr uint64) (*T, error) {
	b, err := m.Bytes(addr, hypercall.SizeOf[T]())
	if err != nil {
		return nil, err
	}
	return hypercall.ViewBytes[T](b, 0)
}
