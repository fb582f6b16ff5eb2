//go:build linux

package hypercall

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Default device paths.
const (
	DefaultPrivcmdPath   = "/dev/xen/privcmd"
	LegacyPrivcmdPath    = "/proc/xen/privcmd"
	DefaultHypercallPath = "/dev/xen/hypercall"
)

// Config selects the devices a [Conn] opens. A nil *Config means defaults.
type Config struct {
	// PrivcmdPath is the privcmd device; empty means /dev/xen/privcmd with
	// a fallback to /proc/xen/privcmd when that does not exist.
	PrivcmdPath string
	// HypercallPath is the buffer device; empty means /dev/xen/hypercall.
	// When it does not exist, buffers are locked anonymous memory.
	HypercallPath string
}

// Conn is an open privcmd device. It implements [Caller]. It is safe for
// concurrent use; buffers are not (see [Buffer]).
type Conn struct {
	privcmd *os.File
	bufdev  *os.File // nil: locked anonymous memory
	path    string
	live    atomic.Int64 // buffers allocated and not yet closed
}

var _ Caller = (*Conn)(nil)

// Open opens the privcmd device.
func Open(cfg *Config) (*Conn, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	path := cfg.PrivcmdPath
	if path == "" {
		path = DefaultPrivcmdPath
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if _, err2 := os.Stat(LegacyPrivcmdPath); err2 == nil {
				path = LegacyPrivcmdPath
			}
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, openError(path, err)
	}
	c := &Conn{privcmd: f, path: path}
	bpath := cfg.HypercallPath
	if bpath == "" {
		bpath = DefaultHypercallPath
	}
	bf, err := os.OpenFile(bpath, os.O_RDWR|unix.O_CLOEXEC, 0)
	switch {
	case err == nil:
		c.bufdev = bf
	case errors.Is(err, os.ErrNotExist), errors.Is(err, unix.ENXIO), errors.Is(err, unix.ENODEV):
		// Older kernels: fall back to locked anonymous memory.
	default:
		f.Close()
		return nil, openError(bpath, err)
	}
	return c, nil
}

// openError explains the usual reasons a Xen device cannot be opened.
func openError(path string, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: open %s: no such device (not running on Xen, or the xen_privcmd module is not loaded: try 'modprobe xen_privcmd')", ErrNoDevice, path)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%w: open %s: permission denied (run as root in dom0)", ErrPermission, path)
	}
	return fmt.Errorf("hypercall: open %s: %w", path, err)
}

// String describes the connection, e.g. "privcmd(/dev/xen/privcmd, fd 3, buffers /dev/xen/hypercall)".
func (c *Conn) String() string {
	if c.privcmd == nil {
		return "privcmd(closed)"
	}
	b := "locked anonymous memory"
	if c.bufdev != nil {
		b = c.bufdev.Name()
	}
	return fmt.Sprintf("privcmd(%s, fd %d, buffers %s)", c.path, c.privcmd.Fd(), b)
}

// BufferSource names where buffers come from: the buffer device's path or
// "locked anonymous memory".
func (c *Conn) BufferSource() string {
	if c.bufdev != nil {
		return c.bufdev.Name()
	}
	return "locked anonymous memory"
}

// Close closes the devices. Buffers must be closed first.
func (c *Conn) Close() error {
	var err error
	if c.bufdev != nil {
		err = c.bufdev.Close()
		c.bufdev = nil
	}
	if c.privcmd != nil {
		err = errors.Join(err, c.privcmd.Close())
		c.privcmd = nil
	}
	if n := c.live.Load(); n != 0 {
		err = errors.Join(err, fmt.Errorf("hypercall: %d buffers still open at close", n))
	}
	return err
}

// LiveBuffers returns the number of buffers allocated and not yet closed.
func (c *Conn) LiveBuffers() int { return int(c.live.Load()) }

// Hypercall issues op with args through IOCTL_PRIVCMD_HYPERCALL. It is the
// one entry point to the device; it retries when interrupted (EINTR) and
// never allocates.
func (c *Conn) Hypercall(op Op, args Args) (uint64, error) {
	if c.privcmd == nil {
		return 0, os.ErrClosed
	}
	h := PrivcmdHypercall{Op: uint64(op), Arg: args}
	fd := c.privcmd.Fd()
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, IOCTL_PRIVCMD_HYPERCALL, uintptr(unsafe.Pointer(&h)))
		switch errno {
		case 0:
			return uint64(r), nil
		case unix.EINTR, unix.EAGAIN:
			continue
		}
		return 0, Errno(errno)
	}
}

// Alloc returns a zeroed buffer of at least size bytes, rounded up to whole
// pages: an mmap of /dev/xen/hypercall, or locked anonymous memory that is
// excluded from fork and pre-faulted.
func (c *Conn) Alloc(size int) (*Buffer, error) {
	if size <= 0 {
		return nil, fmt.Errorf("hypercall: buffer size %d: %w", size, unix.EINVAL)
	}
	n := pageRound(size)
	var (
		mem []byte
		err error
	)
	if c.bufdev != nil {
		mem, err = unix.Mmap(int(c.bufdev.Fd()), 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return nil, fmt.Errorf("hypercall: mmap %s (%d bytes): %w", c.bufdev.Name(), n, err)
		}
	} else {
		mem, err = lockedAnon(n)
		if err != nil {
			return nil, err
		}
	}
	c.live.Add(1)
	full := mem
	return NewBuffer(mem[:size:size], func([]byte) error {
		c.live.Add(-1)
		if c.bufdev == nil {
			_ = unix.Madvise(full, unix.MADV_DOFORK)
		}
		return unix.Munmap(full)
	}), nil
}

// lockedAnon maps n bytes of locked anonymous memory that a child process
// does not share and whose pages are all present.
func lockedAnon(n int) ([]byte, error) {
	mem, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_LOCKED)
	if err != nil {
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("hypercall: locked buffer of %d bytes: %w (RLIMIT_MEMLOCK may be too low; run as root)", n, err)
		}
		return nil, fmt.Errorf("hypercall: locked buffer of %d bytes: %w", n, err)
	}
	if err := unix.Madvise(mem, unix.MADV_DONTFORK); err != nil {
		unix.Munmap(mem)
		return nil, fmt.Errorf("hypercall: madvise DONTFORK: %w", err)
	}
	for i := 0; i < n; i += PageSize {
		mem[i] = 0 // fault every page in now
	}
	return mem, nil
}
