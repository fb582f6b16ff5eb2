//go:build !linux

package qcow2

import (
	"fmt"
	"os"
)

// lockImage is a no-op outside Linux: nothing stops two processes from
// opening one image there (BUG noted in doc.go).
func lockImage(*os.File, bool) error { return nil }

// datasync falls back to fsync.
func datasync(f *os.File) error {
	if err := f.Sync(); err != nil {
		return fmt.Errorf("qcow2: fsync %s: %w", f.Name(), err)
	}
	return nil
}

// punchHole is a no-op outside Linux; freed clusters keep their space
// until they are reused.
func punchHole(*os.File, int64, int64) {}

// prefetch is a no-op outside Linux.
func prefetch(*os.File, int64, int64) {}

// reserve writes zeroes to [off, off+n) (only ever used for clusters
// nothing references yet).
func reserve(f *os.File, off, n int64, zeros []byte) error {
	return writeZeros(f, off, n, zeros)
}
