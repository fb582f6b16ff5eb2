//go:build linux

package nbd

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Ioctl command numbers of include/uapi/linux/nbd.h: NBD_X is
// _IO(0xab, nr); see [ioctlIO]. TestIoctlNumbers pins the results.
const (
	nbdIoctlType = 0xab

	nrSetSock       = 0
	nrSetBlksize    = 1
	nrSetSize       = 2
	nrDoIt          = 3
	nrClearSock     = 4
	nrSetSizeBlocks = 7
	nrDisconnect    = 8
	nrSetTimeout    = 9
	nrSetFlags      = 10
)

// Operation names used in errors besides "ioctl NBD_X".
const (
	opDoIt    = "ioctl NBD_DO_IT"
	opSigmask = "pthread_sigmask"
)

// ioctlName names a command in errors.
func ioctlName(nr uint) string {
	switch nr {
	case nrSetSock:
		return "NBD_SET_SOCK"
	case nrSetBlksize:
		return "NBD_SET_BLKSIZE"
	case nrSetSize:
		return "NBD_SET_SIZE"
	case nrDoIt:
		return "NBD_DO_IT"
	case nrClearSock:
		return "NBD_CLEAR_SOCK"
	case nrSetSizeBlocks:
		return "NBD_SET_SIZE_BLOCKS"
	case nrDisconnect:
		return "NBD_DISCONNECT"
	case nrSetTimeout:
		return "NBD_SET_TIMEOUT"
	case nrSetFlags:
		return "NBD_SET_FLAGS"
	}
	return fmt.Sprintf("_IO(0xab, %d)", nr)
}

// ioctlIO is the kernel's _IO(typ, nr): direction _IOC_NONE, size 0.
// _IOC_NONE is 0 at bit 30 on most architectures, and 1 at bit 29 on
// powerpc, mips and sparc (asm/ioctl.h).
func ioctlIO(typ, nr uint) uint {
	none, dirShift := uint(0), uint(30)
	switch runtime.GOARCH {
	case "ppc", "ppc64", "ppc64le", "mips", "mipsle", "mips64", "mips64le", "sparc", "sparc64":
		none, dirShift = 1, 29
	}
	return none<<dirShift | typ<<8 | nr
}

// nbdIoctl runs one nbd ioctl with an integer argument.
func nbdIoctl(fd int, nr uint, arg int) error {
	if err := unix.IoctlSetInt(fd, ioctlIO(nbdIoctlType, nr), arg); err != nil {
		return &kernelError{Op: "ioctl " + ioctlName(nr), Err: err}
	}
	return nil
}

// startIoctl configures the device with ioctls on a dedicated thread,
// which then blocks in NBD_DO_IT, and waits until the device started. It
// owns fds (the kernel's ends).
func (a *Attachment) startIoctl(ctx context.Context, p *connectParams, fds []int, sysfs string) error {
	block := filepath.Join(sysfs, "block", fmt.Sprintf("nbd%d", a.index))
	pidFile := filepath.Join(block, "pid")
	if _, err := os.Stat(pidFile); err == nil {
		closeFDs(fds)
		return &kernelError{Op: opDevice, Err: unix.EBUSY}
	}
	a.sys.doItDone = make(chan struct{})
	setup := make(chan error, 1)
	go a.runIoctl(p, fds, setup)
	if err := <-setup; err != nil {
		return err
	}
	// NBD_DO_IT starts the device, then sleeps until it is disconnected;
	// sysfs shows block/nbdN/pid once it started.
	_, statErr := os.Stat(block)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(10 * time.Second)
	for {
		if _, err := os.Stat(pidFile); err == nil || statErr != nil {
			return nil // started, or no sysfs to tell
		}
		select {
		case <-a.sys.doItDone:
			if a.sys.doItErr != nil {
				return a.sys.doItErr
			}
			return &kernelError{Op: opDoIt, Err: errors.New("returned at once")}
		case <-ctx.Done():
			a.abortIoctl()
			return ctx.Err()
		case <-timeout:
			a.abortIoctl()
			return &kernelError{Op: opDoIt, Err: fmt.Errorf("%s did not appear within 10 s", pidFile)}
		case <-tick.C:
		}
	}
}

// abortIoctl disconnects a device that is starting and waits for its
// thread.
func (a *Attachment) abortIoctl() {
	disconnectIoctl(a.device)
	a.cancel()
	<-a.sys.doItDone
}

// runIoctl is the thread that configures the device and blocks in
// NBD_DO_IT. The kernel ties the setup to one task (SET_SOCK from another
// thread is EBUSY), and any signal delivered to the thread in NBD_DO_IT
// tears the device down, so the thread is locked, blocks asynchronous
// signals, and exits with the goroutine (it is never unlocked).
func (a *Attachment) runIoctl(p *connectParams, fds []int, setup chan<- error) {
	runtime.LockOSThread()
	defer close(a.sys.doItDone)
	fail := func(err error) {
		closeFDs(fds)
		a.sys.doItErr = err
		setup <- err
	}
	if err := blockAsyncSignals(); err != nil {
		fail(&kernelError{Op: opSigmask, Err: err})
		return
	}
	fd, err := unix.Open(a.device, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		fail(&kernelError{Op: opDevice + " " + a.device, Err: err})
		return
	}
	defer unix.Close(fd)
	if err := configureIoctl(fd, p, fds); err != nil {
		a.sys.doItErr = err
		setup <- err
		return
	}
	setup <- nil
	if err := nbdIoctl(fd, nrDoIt, 0); err != nil {
		a.sys.doItErr = err
	}
	nbdIoctl(fd, nrClearSock, 0) // what nbd-client does; a no-op on recent kernels
}

// configureIoctl sets size, flags and sockets, as nbd-client does. It
// closes fds; on failure after a socket was added, it clears them.
func configureIoctl(fd int, p *connectParams, fds []int) (err error) {
	added := 0
	defer func() {
		closeFDs(fds) // the kernel holds references to those it took
		if err != nil && added > 0 {
			nbdIoctl(fd, nrClearSock, 0)
		}
	}()
	if err := nbdIoctl(fd, nrSetBlksize, int(p.blockSize)); err != nil {
		return err
	}
	if p.size%p.blockSize == 0 {
		err = nbdIoctl(fd, nrSetSizeBlocks, int(p.size/p.blockSize))
	} else if p.size <= uint64(^uint(0)>>1) {
		err = nbdIoctl(fd, nrSetSize, int(p.size))
	} else {
		err = fmt.Errorf("%w: size %d is not a multiple of %d", ErrConfig, p.size, p.blockSize)
	}
	if err != nil {
		return err
	}
	if err := nbdIoctl(fd, nrSetFlags, int(p.flags)); err != nil {
		return err
	}
	if p.timeout != 0 {
		if err := nbdIoctl(fd, nrSetTimeout, int(p.timeout)); err != nil {
			return err
		}
	}
	for _, s := range fds {
		if err := nbdIoctl(fd, nrSetSock, s); err != nil {
			return err
		}
		added++
	}
	return nil
}

// disconnectIoctl asks the kernel to send NBD_CMD_DISC and shut the
// sockets down, which makes NBD_DO_IT return.
func disconnectIoctl(dev string) error {
	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &kernelError{Op: opDevice + " " + dev, Err: err}
	}
	defer unix.Close(fd)
	return nbdIoctl(fd, nrDisconnect, 0)
}

// blockAsyncSignals blocks every signal on the calling thread except the
// synchronous ones, which the Go runtime turns into panics.
func blockAsyncSignals() error {
	var set unix.Sigset_t
	for i := range set.Val {
		set.Val[i] = ^set.Val[i]
	}
	for _, s := range []unix.Signal{unix.SIGSEGV, unix.SIGBUS, unix.SIGFPE, unix.SIGILL, unix.SIGTRAP, unix.SIGSYS} {
		sigdel(set.Val[:], s)
	}
	return unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil)
}

// sigdel removes sig from a sigset_t given as its words.
func sigdel[T uint32 | uint64](words []T, sig unix.Signal) {
	w := bits.Len64(uint64(^T(0)))
	i := int(sig) - 1
	words[i/w] &^= T(1) << (i % w)
}
