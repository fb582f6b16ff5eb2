package xensim

import (
	"fmt"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/hypercall/hypercalltest"
)

// guestMemory is a domain's frame space: frame numbers 0 … frames-1 (the
// domain's max_pages). A frame is zero until written; storage is
// allocated 256 frames at a time on first write.
type guestMemory struct {
	frames uint64
	chunks [][]byte
	zero   []byte // the Sim's zero page, read for untouched frames
}

// read returns frame n for reading, or false when n is not the domain's.
func (g *guestMemory) read(n uint64) ([]byte, bool) {
	if n >= g.frames {
		return nil, false
	}
	c := n / chunkPages
	if c >= uint64(len(g.chunks)) || g.chunks[c] == nil {
		return g.zero, true
	}
	off := (n % chunkPages) * pageSize
	return g.chunks[c][off : off+pageSize : off+pageSize], true
}

// write returns frame n for writing, allocating its chunk if needed.
func (g *guestMemory) write(n uint64) ([]byte, bool) {
	if n >= g.frames {
		return nil, false
	}
	c := n / chunkPages
	if c >= uint64(len(g.chunks)) {
		g.chunks = append(g.chunks, make([][]byte, c+1-uint64(len(g.chunks)))...)
	}
	if g.chunks[c] == nil {
		g.chunks[c] = make([]byte, chunkPages*pageSize)
	}
	off := (n % chunkPages) * pageSize
	return g.chunks[c][off : off+pageSize : off+pageSize], true
}

// GuestMemory is the frame space of one simulated domain, for workload
// drivers and tests that put real data into tmem and check what comes
// back. Frame numbers are what a guest passes as cmfn. Its methods are safe
// for concurrent use with the simulator.
type GuestMemory struct {
	s  *Sim
	id uint16
}

// GuestMemory returns domain id's memory.
func (s *Sim) GuestMemory(id uint16) *GuestMemory { return &GuestMemory{s: s, id: id} }

// Frames returns the number of frames the domain owns (its max_pages).
func (g *GuestMemory) Frames() uint64 {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	if d := g.s.doms[g.id]; d != nil {
		return d.mem.frames
	}
	return 0
}

// Write copies data (at most 4096 bytes) into frame n; the rest of the
// frame is left as it was.
func (g *GuestMemory) Write(n uint64, data []byte) error {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	d := g.s.doms[g.id]
	if d == nil {
		return fmt.Errorf("xensim: guest memory of domain %d: %w", g.id, ErrNoDomain)
	}
	f, ok := d.mem.write(n)
	if !ok {
		return fmt.Errorf("xensim: domain %d has no frame %#x", g.id, n)
	}
	copy(f, data)
	return nil
}

// Read copies frame n into dst (at most 4096 bytes) and returns the count.
func (g *GuestMemory) Read(n uint64, dst []byte) (int, error) {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	d := g.s.doms[g.id]
	if d == nil {
		return 0, fmt.Errorf("xensim: guest memory of domain %d: %w", g.id, ErrNoDomain)
	}
	f, ok := d.mem.read(n)
	if !ok {
		return 0, fmt.Errorf("xensim: domain %d has no frame %#x", g.id, n)
	}
	return copy(dst, f), nil
}

// Frame returns frame n itself. The slice aliases the simulated memory:
// it must not be used while a tmem operation on that frame is running in
// another goroutine.
func (g *GuestMemory) Frame(n uint64) ([]byte, error) {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	d := g.s.doms[g.id]
	if d == nil {
		return nil, fmt.Errorf("xensim: guest memory of domain %d: %w", g.id, ErrNoDomain)
	}
	f, ok := d.mem.write(n)
	if !ok {
		return nil, fmt.Errorf("xensim: domain %d has no frame %#x", g.id, n)
	}
	return f, nil
}

// Guest returns a Caller whose hypercalls are issued by domain id: its
// tmem_op calls create and use that domain's tmem client, and its sysctls
// are refused (only dom0 is privileged). The Sim itself is dom0's Caller.
// Each Guest Caller has its own argument memory, like a separate guest.
func (s *Sim) Guest(id uint16) hypercall.Caller {
	if id == 0 {
		return s
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.guests[id]; c != nil {
		return c
	}
	c := hypercalltest.New(func(op hypercall.Op, args hypercall.Args, mem *hypercalltest.Memory) (uint64, error) {
		return s.handle(id, op, args, mem)
	})
	s.guests[id] = c
	return c
}
