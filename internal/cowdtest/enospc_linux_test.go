//go:build linux

package cowdtest_test

import (
	"bytes"
	"errors"
	"syscall"
	"testing"

	"github.com/xentmem/xentmem/internal/cowdtest"
)

// TestENOSPCOverNBD fills the file system under the CoW store: the client
// gets NBD ENOSPC, earlier data stays readable, a flush still works, and
// the image checks clean (serve's cleanup).
func TestENOSPCOverNBD(t *testing.T) {
	small := t.TempDir()
	if err := syscall.Mount("cowdtest", small, "tmpfs", 0, "size=2m"); err != nil {
		if errors.Is(err, syscall.EPERM) {
			t.Skipf("mounting a tmpfs needs CAP_SYS_ADMIN (run as root): %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(small, syscall.MNT_DETACH) })
	s := serveIn(t, small, 8*mib, 64<<10, nil)
	c, err := cowdtest.Dial("unix", s.sock, &cowdtest.DialOptions{Export: "disk", Structured: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := cowdtest.NewModel(s.base)
	p := bytes.Repeat([]byte{0xc3}, 512)
	var off int64
	for off = 0; off < 8*mib; off += 64 << 10 {
		if err = c.Write(p, off, false); err != nil {
			break
		}
		m.Write(p, off)
	}
	if cowdtest.ErrnoOf(err) != 28 {
		t.Fatalf("write at %d: %v, want NBD ENOSPC (28)", off, err)
	}
	if err := c.Flush(); err != nil {
		t.Fatalf("flush after ENOSPC: %v", err)
	}
	got := make([]byte, 8*mib)
	if err := c.Read(got, 0); err != nil {
		t.Fatal(err)
	}
	if err := m.Check(got, 0); err != nil {
		t.Fatal(err)
	}
}
