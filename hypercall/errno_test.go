package hypercall

import (
	"errors"
	"runtime"
	"syscall"
	"testing"
)

func TestErrnoNames(t *testing.T) {
	tests := []struct {
		e    Errno
		name string
		text string
	}{
		{EFROZEN, "EFROZEN", "EFROZEN (tmem client frozen)"},
		{EEMPTY, "EEMPTY", "EEMPTY (tmem pool empty)"},
		{EACCES, "EACCES", "EACCES (permission denied)"},
		{ENOSYS, "ENOSYS", "ENOSYS (function not implemented)"},
		{Errno(4242), "errno 4242", "errno 4242"},
	}
	for _, tt := range tests {
		if got := tt.e.Name(); got != tt.name {
			t.Errorf("Name(%d) = %q, want %q", int32(tt.e), got, tt.name)
		}
		if got := tt.e.Error(); got != tt.text {
			t.Errorf("Error(%d) = %q, want %q", int32(tt.e), got, tt.text)
		}
	}
}

func TestErrorWrapping(t *testing.T) {
	err := NewError("sysctl physinfo", EACCES)
	var he *Error
	if !errors.As(err, &he) || he.Op != "sysctl physinfo" || he.Errno != EACCES {
		t.Fatalf("NewError = %#v", err)
	}
	if !errors.Is(err, EACCES) || errors.Is(err, EPERM) {
		t.Error("Error does not unwrap to exactly its errno")
	}
	if runtime.GOOS == "linux" && !errors.Is(err, syscall.EACCES) {
		t.Error("Errno does not match syscall.EACCES on Linux")
	}
	if got := err.Error(); got != "sysctl physinfo: EACCES (permission denied)" {
		t.Errorf("message %q", got)
	}
	if NewError("x", nil) != nil {
		t.Error("NewError(nil) != nil")
	}
	other := errors.New("boom")
	if w := NewError("op", other); !errors.Is(w, other) || w.Error() != "op: boom" {
		t.Errorf("wrapped %v", w)
	}
}

func TestResultErrno(t *testing.T) {
	tests := []struct {
		rc   int64
		want uint64
		err  error
	}{
		{0, 0, nil},
		{0x40011, 0x40011, nil},
		{-1, 0, EPERM},
		{-1000, 0, EFROZEN},
		{-1001, 0, EEMPTY},
		{-4095, 0, Errno(4095)},
		{-4096, uint64(1<<64 - 4096), nil},
	}
	for _, tt := range tests {
		got, err := ResultErrno(tt.rc)
		if got != tt.want || err != tt.err {
			t.Errorf("ResultErrno(%d) = %d, %v; want %d, %v", tt.rc, got, err, tt.want, tt.err)
		}
	}
}

func TestOpString(t *testing.T) {
	for op, want := range map[Op]string{OpXenVersion: "xen_version", OpSysctl: "sysctl", OpTmem: "tmem_op", Op(99): "op(99)"} {
		if got := op.String(); got != want {
			t.Errorf("%d: %q, want %q", uint64(op), got, want)
		}
	}
}
