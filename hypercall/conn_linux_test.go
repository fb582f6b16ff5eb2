//go:build linux

package hypercall

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenMissingDevice(t *testing.T) {
	_, err := Open(&Config{PrivcmdPath: filepath.Join(t.TempDir(), "privcmd")})
	if !errors.Is(err, ErrNoDevice) {
		t.Fatalf("err = %v, want ErrNoDevice", err)
	}
}

func TestOpenErrorMessages(t *testing.T) {
	if err := openError("/dev/xen/privcmd", os.ErrPermission); !errors.Is(err, ErrPermission) || !contains(err.Error(), "run as root") {
		t.Errorf("permission: %v", err)
	}
	if err := openError("/dev/xen/privcmd", os.ErrNotExist); !errors.Is(err, ErrNoDevice) || !contains(err.Error(), "xen_privcmd") {
		t.Errorf("missing: %v", err)
	}
}

func contains(s, sub string) bool { return len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0) }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// openDevNull returns a Conn whose "privcmd" is /dev/null: every ioctl
// answers ENOTTY, which exercises the whole call path without Xen.
func openDevNull(t testing.TB) *Conn {
	t.Helper()
	c, err := Open(&Config{PrivcmdPath: "/dev/null", HypercallPath: filepath.Join(t.TempDir(), "none")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestHypercallErrno(t *testing.T) {
	c := openDevNull(t)
	_, err := c.Hypercall(OpXenVersion, Args{})
	if err != Errno(25) { // ENOTTY: /dev/null has no such ioctl
		t.Fatalf("err = %v, want ENOTTY", err)
	}
	if s := c.String(); !contains(s, "/dev/null") || !contains(s, "locked anonymous memory") {
		t.Errorf("String = %q", s)
	}
}

// Without /dev/xen/hypercall, buffers are locked anonymous memory: page
// granular, zeroed, resident, and released on Close.
func TestAllocLockedFallback(t *testing.T) {
	c := openDevNull(t)
	b, err := c.Alloc(100)
	if err != nil {
		t.Fatal(err)
	}
	if b.Len() != 100 || b.Addr()%PageSize != 0 {
		t.Errorf("len %d addr %#x", b.Len(), b.Addr())
	}
	for _, v := range b.Bytes() {
		if v != 0 {
			t.Fatal("buffer not zeroed")
		}
	}
	if c.LiveBuffers() != 1 {
		t.Errorf("live = %d", c.LiveBuffers())
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if c.LiveBuffers() != 0 {
		t.Errorf("live after close = %d", c.LiveBuffers())
	}
	if _, err := c.Alloc(0); err == nil {
		t.Error("Alloc(0): want an error")
	}
}

func TestCloseReportsLeakedBuffers(t *testing.T) {
	c, err := Open(&Config{PrivcmdPath: "/dev/null", HypercallPath: "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Alloc(10)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err == nil {
		t.Error("Close with a live buffer: want an error")
	}
	b.Close()
	if _, err := c.Hypercall(OpXenVersion, Args{}); !errors.Is(err, os.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// The hypercall path allocates nothing per call.
func TestHypercallAllocations(t *testing.T) {
	c := openDevNull(t)
	allocs := testing.AllocsPerRun(1000, func() { c.Hypercall(OpXenVersion, Args{1, 2, 3, 4, 5}) })
	if allocs != 0 {
		t.Errorf("%.1f allocations per hypercall, want 0", allocs)
	}
}

// BenchmarkHypercall measures the ioctl path: against /dev/null here, and
// against real Xen when run in dom0 (internal/xentest runs it there).
func BenchmarkHypercall(b *testing.B) {
	if _, err := os.Stat(DefaultPrivcmdPath); err == nil {
		c, err := Open(nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.Run("xen_version", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Hypercall(OpXenVersion, Args{XENVER_version}); err != nil {
					b.Fatal(err)
				}
			}
		})
		return
	}
	c := openDevNull(b)
	b.Run("devnull", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Hypercall(OpXenVersion, Args{XENVER_version})
		}
	})
}
