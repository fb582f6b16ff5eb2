//go:build linux

package nbd

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// nbdMajor is the block major of /dev/nbdN (NBD_MAJOR in linux/major.h).
const nbdMajor = 43

// Operation names used in errors.
const (
	opDevice     = "device"
	opSocketpair = "socketpair"
	opFsync      = "fsync"
)

// kernelError is a failed request to the kernel: the operation, the errno
// it returned (Unwrap gives it to errors.Is), the kernel's own message
// when netlink sent one, and a hint saying what usually fixes it.
type kernelError struct {
	Op   string
	Err  error
	Msg  string
	Hint string
}

func (e *kernelError) Error() string {
	s := e.Op + ": " + e.Err.Error()
	if e.Msg != "" {
		s += " (kernel: " + e.Msg + ")"
	}
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}

func (e *kernelError) Unwrap() error { return e.Err }

// addHint explains the errnos a misconfigured host produces.
func addHint(err error, device string, index int) error {
	var ke *kernelError
	if !errors.As(err, &ke) || ke.Hint != "" {
		return err
	}
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		ke.Hint = "attaching needs CAP_SYS_ADMIN (run as root)"
	case errors.Is(err, unix.EBUSY):
		ke.Hint = device + " is in use: another nbd client, or still attached (check /sys/block/nbd" +
			strconv.Itoa(index) + "/pid)"
	case errors.Is(err, unix.ENOENT) && ke.Op == opNetlinkGetFamily:
		ke.Hint = "the kernel has no nbd netlink family: load the driver (modprobe nbd); Linux 4.12 or later"
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENXIO), errors.Is(err, unix.ENODEV):
		ke.Hint = "no such nbd device: load the driver (modprobe nbd nbds_max=N) and use an index below nbds_max"
	}
	return err
}

// attachSys is the state a method needs to disconnect.
type attachSys struct {
	doItDone chan struct{} // ioctl: closed when the NBD_DO_IT thread ended
	doItErr  error         // ioctl: set before doItDone is closed
}

var nbdName = regexp.MustCompile(`^nbd([0-9]{1,7})$`)

// deviceIndex returns N for /dev/nbdN. An existing path must be an nbd
// block device (symlinks are followed); a missing one must be in /dev:
// netlink may still attach that index (the kernel then adds the device, or
// refuses).
func deviceIndex(dev string) (int, error) {
	bad := func(why string) error { return fmt.Errorf("%w: device %q: %s", ErrConfig, dev, why) }
	p := dev
	if r, err := filepath.EvalSymlinks(dev); err == nil {
		p = r
	}
	m := nbdName.FindStringSubmatch(filepath.Base(p))
	if m == nil {
		return 0, bad("want /dev/nbdN")
	}
	var st unix.Stat_t
	switch err := unix.Stat(p, &st); {
	case errors.Is(err, unix.ENOENT):
		if filepath.Dir(p) != "/dev" {
			return 0, bad("no such file")
		}
	case err != nil:
		return 0, &kernelError{Op: opDevice + " " + dev, Err: err}
	case st.Mode&unix.S_IFMT != unix.S_IFBLK || unix.Major(uint64(st.Rdev)) != nbdMajor:
		return 0, bad("not an nbd block device")
	}
	return strconv.Atoi(m[1])
}

// Attach connects an export to the kernel's nbd driver, so that cfg.Device
// (/dev/nbdN) reads and writes the export, for blkback or a local mount.
// Each connection is one end of a socketpair that the Server serves in the
// transmission phase (see [Server.ServeTransmission]); the kernel gets the
// other end through netlink (NBD_CMD_CONNECT) or the NBD_SET_SOCK and
// NBD_DO_IT ioctls. The kernel sees the export's size and transmission
// flags (read-only, flush, FUA, trim, multi-conn) and sends simple
// requests only.
//
// ctx bounds the setup only: the connections are served until
// [Attachment.Detach], which a caller shutting down must call before
// stopping whatever serves the Device. Attaching needs CAP_SYS_ADMIN. The
// error wraps the errno of the failed call (EBUSY: the device is in use;
// ENOENT: no nbd driver or device).
func (s *Server) Attach(ctx context.Context, cfg *AttachConfig) (*Attachment, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%w: nil AttachConfig", ErrConfig)
	}
	c := *cfg
	index, err := deviceIndex(c.Device)
	if err != nil {
		return nil, err
	}
	p, e, err := s.connectParams(&c, index)
	if err != nil {
		return nil, err
	}
	method := c.Method
	var nl *genlConn
	var family uint16
	if method == AttachAuto || method == AttachNetlink {
		nl, family, err = dialNBDFamily()
		switch {
		case err == nil:
			method = AttachNetlink
			defer nl.Close()
		case method == AttachAuto && noNetlinkFamily(err):
			method = AttachIoctl
		default:
			return nil, fmt.Errorf("nbd: attach %s: %w", c.Device, addHint(err, c.Device, index))
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The connections outlive ctx: Detach ends them.
	serveCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a := &Attachment{device: c.Device, index: index, method: method, conns: c.Connections,
		cancel: cancel, done: make(chan struct{})}
	fds, err := s.serveKernelConns(serveCtx, a, e)
	if err != nil {
		return nil, fmt.Errorf("nbd: attach %s: %w", c.Device, err)
	}
	switch method {
	case AttachNetlink:
		p.fds = fds
		var got int
		got, err = nl.connect(family, p)
		closeFDs(fds) // the kernel holds its own references
		if err == nil && got != index {
			// Cannot happen with an index given; undo rather than leak.
			nl.disconnect(family, uint32(got))
			err = fmt.Errorf("%w: kernel attached nbd%d, not nbd%d", ErrProtocol, got, index)
		}
	case AttachIoctl:
		err = a.startIoctl(ctx, p, fds, c.Sysfs)
	}
	if err != nil {
		cancel()
		<-a.done
		return nil, fmt.Errorf("nbd: attach %s: %w", c.Device, addHint(err, c.Device, index))
	}
	return a, nil
}

// connectParams validates c (filling in defaults) against the export.
func (s *Server) connectParams(c *AttachConfig, index int) (*connectParams, *Export, error) {
	e := s.lookup(c.Export)
	if e == nil {
		return nil, nil, fmt.Errorf("%w: attach: no export %q", ErrConfig, c.Export)
	}
	if c.Connections == 0 {
		c.Connections = 1
	}
	if c.BlockSize == 0 {
		c.BlockSize = 512
	}
	if c.Sysfs == "" {
		c.Sysfs = "/sys"
	}
	switch {
	case c.Connections < 0 || c.Connections > 64:
		return nil, nil, fmt.Errorf("%w: attach: %d connections (1 to 64)", ErrConfig, c.Connections)
	case c.Connections > 1 && !e.MultiConn:
		return nil, nil, fmt.Errorf("%w: attach: %d connections to export %q, which is not MultiConn",
			ErrConfig, c.Connections, e.Name)
	case bits.OnesCount32(c.BlockSize) != 1 || c.BlockSize < 512 || int(c.BlockSize) > os.Getpagesize():
		return nil, nil, fmt.Errorf("%w: attach: block size %d (a power of two, 512 to %d)",
			ErrConfig, c.BlockSize, os.Getpagesize())
	case e.Size < int64(c.BlockSize):
		return nil, nil, fmt.Errorf("%w: attach: export %q has %d bytes, less than a block", ErrConfig, e.Name, e.Size)
	case c.Timeout < 0 || c.DeadConnTimeout < 0:
		return nil, nil, fmt.Errorf("%w: attach: negative timeout", ErrConfig)
	}
	return &connectParams{
		index:     uint32(index),
		size:      uint64(e.Size),
		blockSize: uint64(c.BlockSize),
		flags:     uint64(e.flags(false)), // the kernel negotiates no structured replies
		timeout:   uint64((c.Timeout + time.Second - 1) / time.Second),
		deadConn:  uint64((c.DeadConnTimeout + time.Second - 1) / time.Second),
	}, e, nil
}

// serveKernelConns makes a socketpair per connection, serves one end of
// each in the transmission phase and returns the other ends. a.done is
// closed once every served connection ended.
func (s *Server) serveKernelConns(ctx context.Context, a *Attachment, e *Export) (kernel []int, err error) {
	var wg sync.WaitGroup
	defer func() {
		if err != nil {
			closeFDs(kernel) // the served ends then see EOF
			a.cancel()
		}
		go func() { wg.Wait(); close(a.done) }()
	}()
	for i := range a.conns {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return kernel, &kernelError{Op: opSocketpair, Err: err}
		}
		f := os.NewFile(uintptr(fds[0]), fmt.Sprintf("nbd%d-conn%d", a.index, i))
		nc, err := net.FileConn(f) // a dup in non-blocking mode, for the poller
		f.Close()
		if err != nil {
			unix.Close(fds[1])
			return kernel, fmt.Errorf("nbd: socketpair: %w", err)
		}
		kernel = append(kernel, fds[1])
		log := s.log.With(zap.String("device", a.device), zap.Int("conn", i))
		wg.Go(func() {
			if err := s.ServeTransmission(ctx, nc, e.Name); err != nil {
				log.Warn("kernel connection ended with an error", zap.Error(err))
			}
		})
	}
	return kernel, nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// detach flushes, disconnects and waits; see [Attachment.Detach].
func (a *Attachment) detach(ctx context.Context) error {
	defer a.cancel()
	var errs []error
	select {
	case <-a.done: // the kernel already let go
	default:
		if err := syncDevice(a.device); err != nil {
			errs = append(errs, err)
		}
		var err error
		if a.method == AttachNetlink {
			err = disconnectNetlink(a.index)
		} else {
			err = disconnectIoctl(a.device)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	select {
	case <-a.done:
	case <-ctx.Done():
		a.cancel() // close our ends: the kernel's recv threads end
		<-a.done
		errs = append(errs, fmt.Errorf("the kernel kept the connections: %w", ctx.Err()))
	}
	if a.method == AttachIoctl {
		select {
		case <-a.sys.doItDone:
			if a.sys.doItErr != nil {
				errs = append(errs, a.sys.doItErr)
			}
		case <-time.After(5 * time.Second):
			errs = append(errs, errors.New("NBD_DO_IT did not return after the connections closed"))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("nbd: detach %s: %w", a.device, errors.Join(errs...))
	}
	return nil
}

// syncDevice writes the device's dirty page cache and sends FLUSH.
func syncDevice(dev string) error {
	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &kernelError{Op: opFsync + " " + dev, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return &kernelError{Op: opFsync + " " + dev, Err: err}
	}
	return nil
}

func disconnectNetlink(index int) error {
	nl, family, err := dialNBDFamily()
	if err != nil {
		return err
	}
	defer nl.Close()
	return nl.disconnect(family, uint32(index))
}
