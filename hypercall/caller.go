package hypercall

// Caller issues hypercalls and allocates the memory their arguments point
// to. [Conn] implements it on a real Xen dom0; the simulated hypervisor in
// package xensim implements it in memory.
//
// Hypercall returns Xen's non-negative result, or an [Errno] when Xen
// answered with a negative value. Pointer arguments must be addresses inside
// buffers obtained from the same Caller's Alloc.
type Caller interface {
	Hypercall(op Op, args Args) (uint64, error)
	Alloc(size int) (*Buffer, error)
}
