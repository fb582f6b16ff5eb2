//go:build linux

package cowd

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// lockFile takes a non-blocking flock on f: exclusive for a serving cowd or
// a tool that writes, shared for tools that only read. The lock dies with
// the process, so kill -9 never leaves a stale lock.
func lockFile(f *os.File, exclusive bool) error {
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return fmt.Errorf("%w: %s", ErrInUse, f.Name())
	}
	if err != nil {
		return fmt.Errorf("cowd: lock %s: %w", f.Name(), err)
	}
	return nil
}

// datasync makes the data of f durable, and the metadata needed to read it
// back (such as the file size).
func datasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			if err != nil {
				return fmt.Errorf("cowd: fdatasync %s: %w", f.Name(), err)
			}
			return nil
		}
	}
}

// punchHole returns the storage of a freed data block to the file system.
// It is best effort: file systems without hole punching keep the space,
// which cowd reuses anyway.
func punchHole(f *os.File, off, length int64) {
	_ = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
}

// prefetch asks the kernel to read a range ahead (NBD_CMD_CACHE).
func prefetch(f *os.File, off, length int64) {
	_ = unix.Fadvise(int(f.Fd()), off, length, unix.FADV_WILLNEED)
}
