// Package hypercall is the raw Xen ABI layer: the Linux privcmd device, the
// hypercall-buffer allocator, the C-layout argument structures and the
// errno values Xen returns.
//
// # Key types
//
//   - [Caller] is the one interface everything above this package uses: it
//     issues a hypercall and allocates the memory its arguments live in. The
//     real device ([Conn]) and the simulated hypervisor (package xensim)
//     both implement it.
//   - [Buffer] is memory the hypervisor may read and write. Every structure
//     passed to Xen lives in such a buffer, never in ordinary Go memory:
//     Xen copies guest memory without running Linux's page-fault handler,
//     so a page that is not resident makes the call fail with EFAULT.
//   - [Error] carries the operation name and the errno and unwraps to the
//     errno, so errors.Is(err, [EFROZEN]) works.
//
// # Lifetime
//
// A [Conn] owns two file descriptors (/dev/xen/privcmd and, when present,
// /dev/xen/hypercall). Close it when done; buffers allocated from it must be
// closed before the Conn. A Buffer's memory is unmapped by Close: slices
// obtained from [Buffer.Bytes] must not be used afterwards.
//
// # Errors
//
// A hypercall that Xen answers with a negative value returns an [Errno]
// (wrapped in [Error] by callers that know the operation). The tmem-specific
// values 1000 and 1001 print as EFROZEN and EEMPTY. Opening the device
// without the right privileges returns an error that says so and names the
// device.
//
// Everything here assumes a 64-bit x86 dom0: the layouts are those of
// x86_64 (guest handles are 8 bytes).
package hypercall
