//go:build !linux

package cowd

import (
	"fmt"
	"os"
)

// lockFile is a no-op outside Linux: nothing stops two processes from
// opening one image there (BUG noted in doc.go).
func lockFile(*os.File, bool) error { return nil }

// datasync falls back to fsync.
func datasync(f *os.File) error {
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cowd: fsync %s: %w", f.Name(), err)
	}
	return nil
}

// punchHole is a no-op outside Linux; freed blocks keep their space and are
// reused.
func punchHole(*os.File, int64, int64) {}

// prefetch is a no-op outside Linux.
func prefetch(*os.File, int64, int64) {}
