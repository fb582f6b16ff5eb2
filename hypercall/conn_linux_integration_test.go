//go:build linux

package hypercall

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// requireDom0 skips unless this is a Xen dom0 with privcmd. Inside the QEMU
// harness (XENTMEM_IN_DOM0=1) a missing device is a failure.
func requireDom0(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(DefaultPrivcmdPath); err != nil {
		if os.Getenv("XENTMEM_IN_DOM0") == "1" {
			t.Fatalf("XENTMEM_IN_DOM0=1 but %s: %v", DefaultPrivcmdPath, err)
		}
		t.Skipf("not a Xen dom0 (%v); these run inside the QEMU dom0 of internal/xentest", err)
	}
}

func extraversion(t *testing.T, c *Conn) string {
	t.Helper()
	b, err := c.Alloc(XenExtraversionLen)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := c.Hypercall(OpXenVersion, Args{XENVER_extraversion, b.Addr()}); err != nil {
		t.Fatalf("extraversion: %v", err)
	}
	s := b.Bytes()
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return string(s)
}

// Both buffer kinds work: /dev/xen/hypercall pages and locked anonymous memory.
func TestIntegrationBufferKinds(t *testing.T) {
	requireDom0(t)
	dev, err := Open(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	anon, err := Open(&Config{HypercallPath: filepath.Join(t.TempDir(), "absent")})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	rc, err := dev.Hypercall(OpXenVersion, Args{XENVER_version})
	if err != nil || rc>>16 != 4 {
		t.Fatalf("XENVER_version = %#x, %v", rc, err)
	}
	a, b := extraversion(t, dev), extraversion(t, anon)
	t.Logf("Xen %d.%d%s via %s; %q via %s", rc>>16, rc&0xFFFF, a, dev.BufferSource(), b, anon.BufferSource())
	if a == "" || a != b {
		t.Errorf("extraversion %q (device) vs %q (locked)", a, b)
	}
}

// Memory that was never touched and is not locked is not present: Xen's copy
// fails with EFAULT, which is why every argument lives in a Buffer.
func TestIntegrationUntouchedMemoryFaults(t *testing.T) {
	requireDom0(t)
	c, err := Open(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mem, err := unix.Mmap(-1, 0, PageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	addr := uint64(uintptr(unsafe.Pointer(&mem[0])))
	_, err = c.Hypercall(OpXenVersion, Args{XENVER_extraversion, addr})
	if !errors.Is(err, EFAULT) {
		t.Fatalf("untouched memory: %v, want EFAULT", err)
	}
}
