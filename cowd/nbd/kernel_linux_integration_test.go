//go:build linux

package nbd

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"
)

// kmem is an in-memory Device for the kernel tests.
type kmem struct {
	mu   sync.Mutex // guards data
	data []byte
}

func (m *kmem) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return copy(p, m.data[off:]), nil
}

func (m *kmem) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return copy(m.data[off:], p), nil
}

func (m *kmem) Sync() error { return nil }

func (m *kmem) slice(off, n int) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.data[off : off+n])
}

// kernelDevice returns the nbd device the kernel tests may use:
// $COWD_TEST_NBD_DEVICE, which makes any missing piece a failure, or
// /dev/nbd0 when it exists and is free. Otherwise the test is skipped:
// most build machines have no nbd driver.
func kernelDevice(t *testing.T) (dev string, index int) {
	t.Helper()
	dev = os.Getenv("COWD_TEST_NBD_DEVICE")
	unavailable := t.Skipf
	if dev != "" {
		unavailable = t.Fatalf
	} else {
		dev = "/dev/nbd0"
	}
	if testing.Short() {
		t.Skip("attaches a kernel nbd device; skipped with -short")
	}
	if os.Geteuid() != 0 {
		unavailable("attaching %s needs root", dev)
	}
	if _, err := os.Stat(dev); err != nil {
		if p, err := exec.LookPath("modprobe"); err == nil {
			exec.Command(p, "nbd", "nbds_max=2").Run()
		}
		if _, err := os.Stat(dev); err != nil {
			unavailable("no kernel nbd device (%v); on a kernel with CONFIG_BLK_DEV_NBD run modprobe nbd, "+
				"or set COWD_TEST_NBD_DEVICE; internal/xentest TestIntegrationCowdNBD runs this test in a QEMU dom0", err)
		}
	}
	index, err := deviceIndex(dev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fmt.Sprintf("/sys/block/nbd%d/pid", index)); err == nil {
		unavailable("%s is in use", dev)
	}
	return dev, index
}

// sysfsSize reads the device's size in 512-byte sectors.
func sysfsSize(t *testing.T, index int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/sys/block/nbd%d/size", index))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond for up to 5 s.
func waitFor(cond func() bool) bool {
	for range 500 {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

func TestIntegrationKernelAttach(t *testing.T) {
	dev, index := kernelDevice(t)
	tests := []struct {
		method AttachMethod
		conns  int
		want   AttachMethod
	}{
		{AttachAuto, 1, AttachNetlink},
		{AttachNetlink, 2, AttachNetlink},
		{AttachIoctl, 1, AttachIoctl},
		{AttachIoctl, 2, AttachIoctl},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v-%d", tt.method, tt.conns), func(t *testing.T) {
			const size = 8 << 20
			m := &kmem{data: make([]byte, size)}
			srv, err := NewServer(&Config{Logger: zaptest.NewLogger(t), Exports: []Export{
				{Name: "k", Device: m, Size: size, MultiConn: true},
			}})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			a, err := srv.Attach(t.Context(), &AttachConfig{Device: dev, Method: tt.method, Connections: tt.conns})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("attached in %v", time.Since(start))
			detached := false
			defer func() {
				if !detached {
					a.Detach(context.Background())
				}
			}()
			if a.Method() != tt.want || a.Connections() != tt.conns || a.Device() != dev {
				t.Errorf("attachment: %v, %d connections, %s", a.Method(), a.Connections(), a.Device())
			}
			if got := sysfsSize(t, index); got != size/512 {
				t.Errorf("sysfs size = %d sectors, want %d", got, size/512)
			}
			checkKernelIO(t, dev, m)

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start = time.Now()
			if err := a.Detach(ctx); err != nil {
				t.Fatalf("Detach: %v", err)
			}
			detached = true
			t.Logf("detached in %v", time.Since(start))
			select {
			case <-a.Done():
			default:
				t.Error("Done still open after Detach")
			}
			if err := a.Detach(ctx); err != nil {
				t.Errorf("second Detach: %v", err)
			}
			if !waitFor(func() bool { return sysfsSize(t, index) == 0 }) {
				t.Errorf("size still %d sectors after Detach", sysfsSize(t, index))
			}
		})
	}
	t.Run("disconnected-from-outside", func(t *testing.T) {
		m := &kmem{data: make([]byte, 1<<20)}
		srv, err := NewServer(&Config{Logger: zaptest.NewLogger(t), Exports: []Export{{Device: m, Size: 1 << 20}}})
		if err != nil {
			t.Fatal(err)
		}
		a, err := srv.Attach(t.Context(), &AttachConfig{Device: dev})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Detach(context.Background())
		// Busy: a second attachment of the same device fails with a hint.
		if _, err := srv.Attach(t.Context(), &AttachConfig{Device: dev}); err == nil ||
			!strings.Contains(err.Error(), "in use") {
			t.Errorf("second Attach: %v", err)
		}
		if err := disconnectNetlink(index); err != nil { // what "nbd-client -d" does
			t.Fatal(err)
		}
		select {
		case <-a.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("Done not closed after the kernel disconnected")
		}
		if err := a.Detach(context.Background()); err != nil {
			t.Errorf("Detach after the kernel let go: %v", err)
		}
	})
}

// checkKernelIO writes through the device and checks the server's data,
// then changes the server's data and reads it through the device.
func checkKernelIO(t *testing.T, dev string, m *kmem) {
	t.Helper()
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	size := len(m.data)
	for _, w := range []struct{ off, n int }{{0, 4096}, {1<<20 + 512, 70 << 10}, {size - 4096, 4096}} {
		p := make([]byte, w.n)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		if _, err := f.WriteAt(p, int64(w.off)); err != nil {
			t.Fatalf("write %d@%d: %v", w.n, w.off, err)
		}
		if err := f.Sync(); err != nil {
			t.Fatalf("fsync: %v", err)
		}
		if !bytes.Equal(m.slice(w.off, w.n), p) {
			t.Errorf("write of %d bytes at %d did not reach the server", w.n, w.off)
		}
	}
	// Data the kernel has not cached: changed behind its back, then the
	// buffer cache dropped (BLKFLSBUF) so the read goes to the server.
	p := bytes.Repeat([]byte("server side "), 4096)
	m.WriteAt(p, 3<<20)
	if err := unix.IoctlSetInt(int(f.Fd()), unix.BLKFLSBUF, 0); err != nil {
		t.Fatalf("BLKFLSBUF: %v", err)
	}
	got := make([]byte, len(p))
	if _, err := f.ReadAt(got, 3<<20); err != nil || !bytes.Equal(got, p) {
		t.Errorf("read through the device differs from the server's data (%v)", err)
	}
}
