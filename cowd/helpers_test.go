package cowd

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// newBase writes a base image of random bytes and returns its path and
// content.
func newBase(t testing.TB, dir string, size int64, seed uint64) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := 0; i+8 <= len(data); i += 8 {
		v := r.Uint64()
		for k := range 8 {
			data[i+k] = byte(v >> (8 * k))
		}
	}
	path := filepath.Join(dir, "base.img")
	if err := os.WriteFile(path, data, 0o400); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// newImage creates a base of size bytes and an image over it.
func newImage(t testing.TB, size int64, bs int) (img string, base []byte) {
	t.Helper()
	dir := t.TempDir()
	basePath, data := newBase(t, dir, size, uint64(size)^uint64(bs))
	img = filepath.Join(dir, "disk.dscow")
	if _, err := Create(img, basePath, &CreateOptions{BlockSize: bs}); err != nil {
		t.Fatal(err)
	}
	return img, data
}

func openDevice(t testing.TB, img string, opts *Options) *Device {
	t.Helper()
	d, err := Open(img, opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// abandon simulates the death of the process: the files are closed (which
// drops the lock) without any flush. Data already written stays in the
// page cache, as it would after kill -9.
func (d *Device) abandon() {
	d.closed.Store(true)
	d.f.Close()
	d.base.Close()
}

// checkClean runs the offline checker and fails on anything but exit 0.
func checkClean(t testing.TB, img string) {
	t.Helper()
	im, err := OpenImage(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	r, err := im.Check(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if r.ExitCode() != 0 {
		t.Fatalf("check: exit %d, errors %v, leaked %d bytes", r.ExitCode(), r.Errors, r.LeakedBytes)
	}
}

func readAll(t testing.TB, d *Device) []byte {
	t.Helper()
	b := make([]byte, d.Size())
	if _, err := d.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}
