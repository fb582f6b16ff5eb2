package nbd

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// AttachMethod is how [Server.Attach] hands its sockets to the kernel.
type AttachMethod int

const (
	// AttachAuto uses netlink, and the ioctls when the kernel has no "nbd"
	// generic netlink family (Linux before 4.12).
	AttachAuto AttachMethod = iota
	// AttachNetlink sends NBD_CMD_CONNECT to the "nbd" generic netlink
	// family; the device stays configured without a waiting thread.
	AttachNetlink
	// AttachIoctl configures the device with NBD_SET_* ioctls and keeps a
	// locked OS thread blocked in NBD_DO_IT for as long as it is attached.
	AttachIoctl
)

func (m AttachMethod) String() string {
	switch m {
	case AttachAuto:
		return "auto"
	case AttachNetlink:
		return "netlink"
	case AttachIoctl:
		return "ioctl"
	}
	return "AttachMethod(" + strconv.Itoa(int(m)) + ")"
}

// AttachConfig configures [Server.Attach].
type AttachConfig struct {
	// Device is the kernel device, "/dev/nbdN".
	Device string
	// Export names the export to attach; "" is the default export.
	Export string
	// Connections is the number of sockets the kernel gets (0 means 1).
	// More than one needs [Export].MultiConn; the kernel spreads its
	// hardware queues over them.
	Connections int
	// BlockSize is the logical block size of the device: a power of two
	// from 512 (the default) to the page size. It is what blkback reports
	// to a guest as its sector size.
	BlockSize uint32
	// Timeout is the kernel's per-request timeout, rounded up to whole
	// seconds. Zero keeps the kernel default: Debian's 6.1 kernel then only
	// warns about a stuck request and keeps waiting; old kernels give up
	// after 30 s.
	Timeout time.Duration
	// DeadConnTimeout (netlink only) is how long the kernel queues
	// requests for a dead connection, waiting for a reconfiguration,
	// before failing them. Zero fails them at once.
	DeadConnTimeout time.Duration
	// Method selects netlink or the ioctls; AttachAuto prefers netlink.
	Method AttachMethod
	// Sysfs is where sysfs is mounted ("/sys"): with the ioctls, Attach
	// waits for block/nbdN/pid to know the device started.
	Sysfs string
}

// Attachment is an export connected to a kernel nbd device. Its methods
// are safe for concurrent use. The connections are served by the Server
// until [Attachment.Detach] returns, independently of the context given to
// Attach, so that a Server shutting down can detach first and then stop.
type Attachment struct {
	device string
	index  int
	method AttachMethod
	conns  int

	cancel context.CancelFunc // stops serving the kernel's sockets (last resort)
	done   chan struct{}      // closed when every connection ended

	once      sync.Once // guards detachErr: Detach runs once
	detachErr error

	sys attachSys // what the method needs to disconnect
}

// Device returns the device path, such as "/dev/nbd0".
func (a *Attachment) Device() string { return a.device }

// Method returns the method used: AttachNetlink or AttachIoctl.
func (a *Attachment) Method() AttachMethod { return a.method }

// Connections returns the number of sockets the kernel was given.
func (a *Attachment) Connections() int { return a.conns }

// Done is closed once the kernel stopped using every connection: after
// Detach, or earlier when the device was disconnected from outside (nbd-client
// -d, a request timeout).
func (a *Attachment) Done() <-chan struct{} { return a.done }

// Detach flushes the device (fsync, which also sends FLUSH), disconnects
// it and waits until the kernel has let go of every connection, at most
// until ctx ends, after which the connections are closed from this side.
// Requests still in flight in the kernel fail with EIO. Only the first call
// does the work; later calls return its result.
func (a *Attachment) Detach(ctx context.Context) error {
	a.once.Do(func() { a.detachErr = a.detach(ctx) })
	return a.detachErr
}
