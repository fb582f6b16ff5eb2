package qcow2

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xentmem/xentmem/internal/cowdtest"
)

const mib = 1 << 20

// tool runs an external tool and returns its output and exit code; a
// missing tool skips the test (fails it under CI=true).
func tool(t testing.TB, name string, args ...string) (string, int) {
	t.Helper()
	path := cowdtest.RequireTool(t, name)
	out, err := exec.Command(path, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	return "", 0
}

// mustTool runs an external tool and fails the test unless it exits 0.
func mustTool(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, code := tool(t, name, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d\n%s", name, strings.Join(args, " "), code, out)
	}
	return out
}

// randomBytes returns deterministic pseudo-random content.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// qemuRead returns the guest content of an image as qemu-img sees it.
func qemuRead(t testing.TB, img string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "dump.raw")
	mustTool(t, "qemu-img", "convert", "-U", "-O", "raw", img, out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// qemuCheck runs qemu-img check and returns its exit code and output.
// Without -r it passes -U: the tests have closed the image, but with
// parallel subtests a child process forked by another test may briefly
// hold a copy of the closed descriptor, and with it QEMU's locks.
func qemuCheck(t testing.TB, img string, extra ...string) (int, string) {
	t.Helper()
	if !slices.Contains(extra, "-r") {
		extra = append(extra, "-U")
	}
	out, code := tool(t, "qemu-img", append(append([]string{"check"}, extra...), img)...)
	return code, out
}

// openTest opens an image for writing, retrying for a moment on ErrInUse
// for the reason given at qemuCheck.
func openTest(t testing.TB, img string, opts *Options) *Device {
	t.Helper()
	for i := 0; ; i++ {
		d, err := Open(img, opts)
		if err == nil {
			return d
		}
		if !errors.Is(err, ErrInUse) || i == 100 {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readAll reads the whole device.
func readAll(t testing.TB, d *Device) []byte {
	t.Helper()
	b := make([]byte, d.Size())
	if _, err := d.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

func firstDiff(a, b []byte) int {
	if len(a) != len(b) {
		return -2
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

func requireSame(t testing.TB, what string, want, got []byte) {
	t.Helper()
	if !bytes.Equal(want, got) {
		i := firstDiff(want, got)
		if i >= 0 {
			t.Fatalf("%s: first difference at byte %d (cluster %d): want %#02x, got %#02x", what, i, i>>16, want[i], got[i])
		}
		t.Fatalf("%s: sizes differ: want %d, got %d", what, len(want), len(got))
	}
}
