//go:build unix

package hypercalltest

import "golang.org/x/sys/unix"

// allocPages maps n bytes of anonymous memory: zeroed, at a stable address,
// outside the Go heap, and resident only where written, so a large LIST
// buffer costs only the pages Xen (the simulator) fills.
func allocPages(n int) ([]byte, func() error, error) {
	mem, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return nil, nil, err
	}
	return mem, func() error { return unix.Munmap(mem) }, nil
}
