//go:build linux

package cowd

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// mountSmallTmpfs mounts a tmpfs of the given size on a temporary directory
// and skips the test if this process may not mount.
func mountSmallTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("cowdtest", dir, "tmpfs", 0, "size="+size); err != nil {
		if errors.Is(err, unix.EPERM) {
			t.Skipf("mounting a tmpfs needs CAP_SYS_ADMIN (run as root): %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

func TestENOSPCKeepsMetadataIntact(t *testing.T) {
	small := mountSmallTmpfs(t, "2m")
	baseDir := t.TempDir()
	basePath, base := newBase(t, baseDir, 4<<20, 7)
	img := filepath.Join(small, "disk.dscow")
	if _, err := Create(img, basePath, &CreateOptions{BlockSize: 64 * kib}); err != nil {
		t.Fatal(err)
	}
	d := openDevice(t, img, nil)
	want := bytes.Clone(base)
	p := bytes.Repeat([]byte{0xee}, 4096)
	var err error
	var off int64
	for off = 0; off < int64(len(base)); off += 64 * kib {
		if _, err = d.WriteAt(p, off); err != nil {
			break
		}
		copy(want[off:], p)
	}
	if !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("write at %d: error %v, want ENOSPC", off, err)
	}
	if err := d.Sync(); err != nil {
		t.Fatalf("flush after ENOSPC: %v", err)
	}
	if !bytes.Equal(readAll(t, d), want) {
		t.Fatal("content after ENOSPC differs")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	checkClean(t, img)
	d = openDevice(t, img, nil)
	defer d.Close()
	if !bytes.Equal(readAll(t, d), want) {
		t.Fatal("content after reopen differs")
	}
}
