//go:build linux

package cowdtest_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/xentmem/xentmem/internal/cowdtest"
)

// TestQcow2ENOSPC fills the file system under a qcow2 overlay: the client
// gets NBD ENOSPC, earlier data stays readable, a flush still works, and
// qemu-img check finds the image clean (serveQcow2's cleanup). Small
// clusters make new L2 tables and refcount blocks run out of space too.
func TestQcow2ENOSPC(t *testing.T) {
	for _, opts := range []string{"cluster_size=64k", "cluster_size=4k", "extended_l2=on,cluster_size=32k"} {
		t.Run(optsName(opts), func(t *testing.T) {
			small := t.TempDir()
			if err := syscall.Mount("cowdtest", small, "tmpfs", 0, "size=2m"); err != nil {
				if errors.Is(err, syscall.EPERM) {
					t.Skipf("mounting a tmpfs needs CAP_SYS_ADMIN (run as root): %v", err)
				}
				t.Fatal(err)
			}
			t.Cleanup(func() { syscall.Unmount(small, syscall.MNT_DETACH) })
			dir, img, base := newQcow2Overlay(t, 8*mib, opts)
			moved := filepath.Join(small, "ov.qcow2")
			b, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(moved, b, 0o600); err != nil {
				t.Fatal(err)
			}
			runTool(t, "qemu-img", "rebase", "-u", "-f", "qcow2", "-b", filepath.Join(dir, "base.raw"), "-F", "raw", moved)
			s := serveQcow2(t, dir, moved, nil)
			c, err := cowdtest.Dial("unix", s.sock, &cowdtest.DialOptions{Export: "disk", Structured: true})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			m := cowdtest.NewModel(base)
			p := bytes.Repeat([]byte{0xc3}, 8<<10)
			var off int64
			for off = 0; off < 8*mib; off += 24 << 10 {
				if err = c.Write(p, off, false); err != nil {
					m.Trim(off, int64(len(p))) // a failed write may have landed in part
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
		})
	}
}
