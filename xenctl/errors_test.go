package xenctl

import (
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/xentmem/xentmem/hypercall"
)

// Each errno of a sysctl surfaces as the right sentinel, still matches the
// errno, and carries a hint.
func TestSysctlErrors(t *testing.T) {
	tests := []struct {
		errno    hypercall.Errno
		sentinel error
		hint     string
	}{
		{hypercall.EACCES, ErrInterfaceVersion, "interface version"},
		{hypercall.EPERM, ErrPermission, "not dom0"},
		{hypercall.EFAULT, ErrFault, "not resident"},
		{hypercall.ENOSYS, ErrNotSupported, "does not implement"},
	}
	for _, tt := range tests {
		t.Run(tt.errno.Name(), func(t *testing.T) {
			f := &fakeXen{t: t, ver: Version{4, 17, ".7"}, iface: 0x15}
			cl := f.client(t)
			f.sysctlErr = tt.errno
			_, err := cl.Physinfo()
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("err %v does not match %v", err, tt.sentinel)
			}
			if !errors.Is(err, tt.errno) {
				t.Errorf("err %v does not match errno %v", err, tt.errno)
			}
			if runtime.GOOS == "linux" && !errors.Is(err, syscall.Errno(tt.errno)) {
				t.Errorf("err %v does not match syscall.Errno(%d)", err, tt.errno)
			}
			if !strings.Contains(err.Error(), tt.hint) || !strings.Contains(err.Error(), "sysctl physinfo") {
				t.Errorf("message %q lacks the operation or the hint %q", err, tt.hint)
			}
		})
	}
}

// A wrong interface version (what a 4.12 build would send to 4.17) is
// refused with EACCES and explained.
func TestWrongInterfaceVersion(t *testing.T) {
	f := &fakeXen{t: t, ver: Version{4, 17, ".7"}, iface: 0x15}
	cl, err := New(f.caller(), &Config{SysctlInterfaceVersion: 0x12})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, err = cl.Physinfo()
	var xe *Error
	if !errors.As(err, &xe) || xe.Errno != hypercall.EACCES || !errors.Is(err, ErrInterfaceVersion) {
		t.Fatalf("err = %v", err)
	}
}

// Argument memory outside any hypercall buffer is EFAULT, as on real Xen
// for untouched memory.
func TestFaultOutsideBuffers(t *testing.T) {
	f := &fakeXen{t: t, ver: Version{4, 17, ".7"}, iface: 0x15}
	c := f.caller()
	_, err := c.Hypercall(hypercall.OpSysctl, hypercall.Args{0x1000})
	if !errors.Is(err, hypercall.EFAULT) {
		t.Fatalf("err = %v, want EFAULT", err)
	}
	if got := opError(opPhysinfo, kindSysctl, err); !errors.Is(got, ErrFault) {
		t.Errorf("opError = %v", got)
	}
}

func TestTmemErrnoMeaning(t *testing.T) {
	tests := []struct {
		kind     opKind
		errno    hypercall.Errno
		sentinel error
	}{
		{kindTmemGuest, hypercall.EFROZEN, ErrFrozen},
		{kindTmemGuest, hypercall.EEMPTY, ErrEmpty},
		{kindTmemGuest, hypercall.ENODEV, ErrNoPool},
		{kindTmemControl, hypercall.ENODEV, ErrTmemDisabled},
		{kindTmemControl, hypercall.ENOSYS, ErrNoTmem},
		{kindTmemControl, hypercall.EPERM, ErrFailed},
		{kindTmemControl, hypercall.ENOENT, ErrNoClient},
		{kindTmemControl, hypercall.ENOMEM, ErrNoMemory},
		{kindTmemControl, hypercall.ERANGE, ErrInvalid},
		{kindTmemControl, hypercall.EOPNOTSUPP, ErrNotSupported},
	}
	for _, tt := range tests {
		err := opError("tmem op", tt.kind, tt.errno)
		if !errors.Is(err, tt.sentinel) || !errors.Is(err, tt.errno) {
			t.Errorf("%v (kind %d): %v does not match %v and the errno", tt.errno, tt.kind, err, tt.sentinel)
		}
	}
	if opError("x", kindSysctl, nil) != nil {
		t.Error("opError(nil) != nil")
	}
	plain := errors.New("closed")
	if err := opError("x", kindSysctl, plain); !errors.Is(err, plain) {
		t.Errorf("non-errno error not wrapped: %v", err)
	}
}

func TestUnsupportedError(t *testing.T) {
	err := error(&UnsupportedError{Op: "tmem set cap", Running: Version{4, 12, ".4"}, Have: "4.0–4.7"})
	if !errors.Is(err, ErrNotSupported) || !errors.Is(err, hypercall.ErrNotSupported) {
		t.Error("UnsupportedError does not match ErrNotSupported")
	}
	if got, want := err.Error(), "xenctl: tmem set cap: not supported by Xen 4.12.4 (available in Xen 4.0–4.7)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Diagnose names the missing piece: Xen, the driver, root, or dom0.
func TestDiagnose(t *testing.T) {
	host := func(name string) HostPaths {
		d := filepath.Join("testdata", "host", name)
		return HostPaths{SysHypervisor: filepath.Join(d, "sys", "hypervisor"), ProcXen: filepath.Join(d, "proc", "xen")}
	}
	tests := []struct {
		name string
		host HostPaths
		err  error
		want string
	}{
		{"bare metal", host("bare"), hypercall.ErrNoDevice, "not running under Xen"},
		{"domU without privcmd", host("domU"), hypercall.ErrNoDevice, "domU"},
		{"dom0 without driver", host("dom0"), hypercall.ErrNoDevice, "modprobe xen_privcmd"},
		{"not root", host("dom0"), hypercall.ErrPermission, "run as root"},
		{"domU EPERM", host("domU"), &Error{Op: "xen_version", Errno: hypercall.EPERM, Sentinel: ErrPermission}, "not dom0"},
		{"EPERM", host("dom0"), &Error{Op: "xen_version", Errno: hypercall.EPERM, Sentinel: ErrPermission}, "not dom0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Diagnose(tt.host, tt.err)
			if !errors.Is(err, ErrNoXen) || !errors.Is(err, tt.err) {
				t.Errorf("%v does not match ErrNoXen and the cause", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%q does not mention %q", err, tt.want)
			}
		})
	}
	other := errors.New("something else")
	if got := Diagnose(host("dom0"), other); got != other {
		t.Errorf("unrelated error rewritten: %v", got)
	}
}
