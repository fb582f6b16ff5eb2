//go:build linux

package qcow2

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// QEMU's image locking (block/file-posix.c): open file description locks
// on single bytes. Byte permBase+i is read-locked by a user holding
// permission i; byte sharedBase+i by a user that does not share it.
const (
	lockPermBase   = 100
	lockSharedBase = 200
)

// QEMU block permissions.
const (
	permConsistentRead = 1 << 0
	permWrite          = 1 << 1
	permWriteUnchanged = 1 << 2
	permResize         = 1 << 3
	permCount          = 4
)

var permNames = [permCount]string{"consistent read", "write", "write unchanged", "resize"}

// lockImage takes QEMU-compatible locks for a user holding perm and
// sharing shared, then checks that no other user conflicts, the way QEMU
// does: a running qemu-nbd, QEMU or cowd on the same image makes it fail
// with ErrInUse, and "qemu-img info" on an image cowd serves fails too
// (unless given -U). The locks die with the file descriptor.
func lockImage(f *os.File, writable bool) error {
	perm, shared := uint(permConsistentRead), uint(permConsistentRead|permWriteUnchanged)
	if writable {
		perm |= permWrite | permWriteUnchanged | permResize
	}
	fd := int(f.Fd())
	for i := range permCount {
		if perm&(1<<i) != 0 {
			if err := ofdLock(fd, lockPermBase+i, unix.F_RDLCK); err != nil {
				return lockError(f, permNames[i], err)
			}
		}
		if shared&(1<<i) == 0 {
			if err := ofdLock(fd, lockSharedBase+i, unix.F_RDLCK); err != nil {
				return lockError(f, permNames[i], err)
			}
		}
	}
	for i := range permCount {
		if perm&(1<<i) != 0 {
			if busy, err := ofdTest(fd, lockSharedBase+i); err != nil || busy {
				return lockError(f, permNames[i], err)
			}
		}
		if shared&(1<<i) == 0 {
			if busy, err := ofdTest(fd, lockPermBase+i); err != nil || busy {
				return lockError(f, "shared "+permNames[i], err)
			}
		}
	}
	return nil
}

func lockError(f *os.File, what string, err error) error {
	if err == nil || errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%w: %s (failed to get the %q lock; is QEMU or another cowd using it?)", ErrInUse, f.Name(), what)
	}
	return fmt.Errorf("qcow2: lock %s: %w", f.Name(), err)
}

func ofdLock(fd, off int, typ int16) error {
	lk := unix.Flock_t{Type: typ, Whence: 0, Start: int64(off), Len: 1}
	for {
		err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk)
		if err != unix.EINTR {
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTSUP) {
				return nil // file system without OFD locks: like QEMU, go on unlocked
			}
			return err
		}
	}
}

// ofdTest reports whether another open file description holds a lock
// that conflicts with a write lock on byte off.
func ofdTest(fd, off int) (bool, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: int64(off), Len: 1}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, &lk); err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTSUP) {
			return false, nil
		}
		return false, err
	}
	return lk.Type != unix.F_UNLCK, nil
}

// datasync makes the data of f durable, and the metadata needed to read
// it back (such as the file size).
func datasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			if err != nil {
				return fmt.Errorf("qcow2: fdatasync %s: %w", f.Name(), err)
			}
			return nil
		}
	}
}

// punchHole returns the storage of freed clusters to the file system,
// best effort.
func punchHole(f *os.File, off, length int64) {
	_ = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
}

// prefetch asks the kernel to read a range ahead (NBD_CMD_CACHE).
func prefetch(f *os.File, off, length int64) {
	_ = unix.Fadvise(int(f.Fd()), off, length, unix.FADV_WILLNEED)
}

// reserve makes sure the file has storage for [off, off+n), extending it
// if needed; it never shrinks the file and does not change existing data.
// Without fallocate support it writes zeroes (only ever used for clusters
// nothing references yet).
func reserve(f *os.File, off, n int64, zeros []byte) error {
	err := unix.Fallocate(int(f.Fd()), 0, off, n)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
		return fmt.Errorf("qcow2: reserve %d bytes at %#x: %w", n, off, err)
	}
	return writeZeros(f, off, n, zeros)
}
