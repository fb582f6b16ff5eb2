package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/xentmem/xentmem/cowd"
	"github.com/xentmem/xentmem/cowd/nbd"
)

func TestParseFlagsNBDDevice(t *testing.T) {
	o, err := parseFlags([]string{"-n", "--nbd-device", "/dev/nbd3", "vm", "c"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.nbdDevice != "/dev/nbd3" || !o.foreground {
		t.Errorf("options: %+v", o)
	}
}

func TestKernelConnections(t *testing.T) {
	if n := kernelConnections(); n < 1 || n > 4 {
		t.Errorf("kernelConnections() = %d, want 1 to 4", n)
	}
}

func TestAttachKernelNotAsked(t *testing.T) {
	detach, err := attachKernel(context.Background(), &options{name: "vm"}, nil, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := detach(); err != nil {
		t.Errorf("detach: %v", err)
	}
}

// A device cowd cannot attach makes run fail before it reports readiness,
// and leaves no pid file, no socket and a cleanly closed image.
func TestRunAttachFailure(t *testing.T) {
	dir := t.TempDir()
	base, img := filepath.Join(dir, "base.img"), filepath.Join(dir, "vm.dscow")
	if err := os.WriteFile(base, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cowd.Create(img, base, &cowd.CreateOptions{BlockSize: 64 << 10}); err != nil {
		t.Fatal(err)
	}
	sock, pid := filepath.Join(dir, "vm.sock"), filepath.Join(dir, "vm.pid")
	o := &options{plugin: "dscow", name: "vm", cowFile: img, listen: "unix:" + sock, pidFile: pid,
		nbdDevice: filepath.Join(dir, "nbd0")} // not in /dev, and absent
	var readyErr error
	readyCalls := 0
	err := run(context.Background(), o, zaptest.NewLogger(t), func(err error) { readyErr = err; readyCalls++ })
	if !errors.Is(err, nbd.ErrConfig) || !strings.Contains(err.Error(), o.nbdDevice) {
		t.Fatalf("run: %v, want an ErrConfig naming the device", err)
	}
	if readyCalls != 1 || readyErr == nil {
		t.Errorf("ready called %d times with %v", readyCalls, readyErr)
	}
	for _, p := range []string{sock, pid} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind (%v)", p, err)
		}
	}
	d, err := cowd.Open(img, nil)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if w := d.Warnings(); len(w) != 0 {
		t.Errorf("warnings after reopening: %q", w)
	}
	d.Close()
}
