package nbd_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zaptest"

	"github.com/xentmem/xentmem/cowd/nbd"
	"github.com/xentmem/xentmem/internal/cowdtest"
)

// memDevice is an in-memory Device with every optional interface.
type memDevice struct {
	mu    sync.Mutex // guards data
	data  []byte
	syncs atomic.Int32
	delay func(off int64) time.Duration // optional per-read delay
	err   error                         // returned by WriteAt when set
}

func newMemDevice(size int) *memDevice { return &memDevice{data: make([]byte, size)} }

func (m *memDevice) ReadAt(p []byte, off int64) (int, error) {
	if m.delay != nil {
		time.Sleep(m.delay(off))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return copy(p, m.data[off:]), nil
}

func (m *memDevice) WriteAt(p []byte, off int64) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return copy(m.data[off:], p), nil
}

func (m *memDevice) Sync() error { m.syncs.Add(1); return nil }

func (m *memDevice) Trim(off, n int64) error { return m.WriteZeroes(off, n, false, false) }

func (m *memDevice) WriteZeroes(off, n int64, noHole, fast bool) error {
	if fast && (off%4096 != 0 || n%4096 != 0) {
		return fmt.Errorf("slow: %w", errors.ErrUnsupported)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.data[off : off+n])
	return nil
}

func (m *memDevice) BlockStatus(off, n int64) (int64, bool, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	zero := m.data[off] == 0
	run := int64(1)
	for run < n && (m.data[off+run] == 0) == zero {
		run++
	}
	return run, zero, zero, nil
}

// startServer serves exports on a unix socket until the test ends and
// returns the socket path.
func startServer(t *testing.T, exports ...nbd.Export) string {
	t.Helper()
	srv, err := nbd.NewServer(&nbd.Config{Exports: exports, Logger: zaptest.NewLogger(t), Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "nbd.sock")
	l, err := nbd.Listen("unix:" + sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return sock
}

func dial(t *testing.T, sock string, opts *cowdtest.DialOptions) *cowdtest.Client {
	t.Helper()
	c, err := cowdtest.Dial("unix", sock, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestHandshake(t *testing.T) {
	dev := newMemDevice(1 << 20)
	sock := startServer(t,
		nbd.Export{Name: "disk", Description: "test disk", Device: dev, Size: 1 << 20, MultiConn: true},
		nbd.Export{Name: "ro", Device: dev, Size: 4096, ReadOnly: true})
	tests := []struct {
		name      string
		opts      cowdtest.DialOptions
		wantSize  int64
		wantFlags uint16
		wantErr   uint32
	}{
		{name: "GO", opts: cowdtest.DialOptions{Export: "disk"}, wantSize: 1 << 20, wantFlags: 0x0d6d},
		{name: "GO structured", opts: cowdtest.DialOptions{Export: "disk", BaseAlloc: true, BlockSize: true},
			wantSize: 1 << 20, wantFlags: 0x0ded},
		{name: "default export", opts: cowdtest.DialOptions{}, wantSize: 1 << 20, wantFlags: 0x0d6d},
		{name: "EXPORT_NAME", opts: cowdtest.DialOptions{Export: "ro", UseExportName: true}, wantSize: 4096, wantFlags: 0x040f},
		{name: "unknown export", opts: cowdtest.DialOptions{Export: "nope"}, wantErr: 1<<31 + 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := cowdtest.Dial("unix", sock, &tt.opts)
			if got := cowdtest.ErrnoOf(err); got != tt.wantErr {
				t.Fatalf("Dial error = %v, want reply type %#x", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer c.Close()
			if c.Size != tt.wantSize || c.Flags != tt.wantFlags {
				t.Errorf("size %d flags %#04x, want %d %#04x", c.Size, c.Flags, tt.wantSize, tt.wantFlags)
			}
			if tt.opts.BlockSize && c.Sizes != [3]uint32{1, 4096, 32 << 20} {
				t.Errorf("block sizes %v", c.Sizes)
			}
		})
	}
	names, err := cowdtest.List("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"disk", "ro"}, names); diff != "" {
		t.Errorf("LIST (-want +got):\n%s", diff)
	}
}

func TestRequests(t *testing.T) {
	const size = 1 << 20
	dev := newMemDevice(size)
	full := newMemDevice(size)
	full.err = fmt.Errorf("disk full: %w", nbd.ENOSPC)
	sock := startServer(t,
		nbd.Export{Name: "disk", Device: dev, Size: size, BlockSize: nbd.BlockSizes{Min: 512}},
		nbd.Export{Name: "ro", Device: dev, Size: size, ReadOnly: true},
		nbd.Export{Name: "full", Device: full, Size: size})
	rw := dial(t, sock, &cowdtest.DialOptions{Export: "disk", BaseAlloc: true, BlockSize: true})
	simple := dial(t, sock, &cowdtest.DialOptions{Export: "disk"})
	ro := dial(t, sock, &cowdtest.DialOptions{Export: "ro"})
	fullc := dial(t, sock, &cowdtest.DialOptions{Export: "full", Structured: true})
	buf := make([]byte, 8192)
	tests := []struct {
		name    string
		c       *cowdtest.Client
		typ     uint16
		flags   uint16
		off     uint64
		length  uint32
		payload []byte
		want    uint32
	}{
		{name: "write", c: rw, typ: cowdtest.CmdWrite, off: 4096, length: 4096, payload: buf[:4096]},
		{name: "write FUA", c: rw, typ: cowdtest.CmdWrite, flags: cowdtest.FlagFUA, off: 0, length: 512, payload: buf[:512]},
		{name: "read", c: rw, typ: cowdtest.CmdRead, off: 0, length: 8192},
		{name: "read DF", c: rw, typ: cowdtest.CmdRead, flags: cowdtest.FlagDF, off: 0, length: 8192},
		{name: "flush", c: rw, typ: cowdtest.CmdFlush},
		{name: "trim", c: rw, typ: cowdtest.CmdTrim, off: 0, length: 4096},
		{name: "cache", c: rw, typ: cowdtest.CmdCache, off: 0, length: size},
		{name: "fast zero", c: rw, typ: cowdtest.CmdWriteZeroes, flags: cowdtest.FlagFastZero, off: 8192, length: 8192},
		{name: "fast zero refused", c: rw, typ: cowdtest.CmdWriteZeroes, flags: cowdtest.FlagFastZero, off: 512, length: 512, want: 95},
		{name: "block status", c: rw, typ: cowdtest.CmdBlockStatus, off: 0, length: size},
		{name: "block status without context", c: simple, typ: cowdtest.CmdBlockStatus, off: 0, length: 512, want: 22},
		{name: "unknown command", c: rw, typ: 42, want: 22},
		{name: "unknown flag", c: rw, typ: cowdtest.CmdRead, flags: 1 << 9, length: 512, want: 22},
		{name: "NO_HOLE on a read", c: rw, typ: cowdtest.CmdRead, flags: cowdtest.FlagNoHole, length: 512, want: 22},
		{name: "DF without structured replies", c: simple, typ: cowdtest.CmdRead, flags: cowdtest.FlagDF, length: 512, want: 22},
		{name: "read past the end", c: rw, typ: cowdtest.CmdRead, off: size - 512, length: 1024, want: 22},
		{name: "read offset overflow", c: rw, typ: cowdtest.CmdRead, off: 1<<64 - 512, length: 1024, want: 22},
		{name: "write past the end", c: rw, typ: cowdtest.CmdWrite, off: size, length: 512, payload: buf[:512], want: 28},
		{name: "zero past the end", c: rw, typ: cowdtest.CmdWriteZeroes, off: size - 512, length: 1024, want: 28},
		{name: "misaligned read", c: rw, typ: cowdtest.CmdRead, off: 100, length: 512, want: 22},
		{name: "misaligned write", c: rw, typ: cowdtest.CmdWrite, off: 512, length: 100, payload: buf[:100], want: 22},
		{name: "alignment not agreed", c: simple, typ: cowdtest.CmdWrite, off: 1, length: 3, payload: buf[:3]},
		{name: "oversized read", c: rw, typ: cowdtest.CmdRead, off: 0, length: 33 << 20, want: 22},
		{name: "oversized write", c: simple, typ: cowdtest.CmdWrite, off: 0, length: 1 << 20, payload: make([]byte, 1<<20)},
		{name: "write read-only", c: ro, typ: cowdtest.CmdWrite, off: 0, length: 512, payload: buf[:512], want: 1},
		{name: "trim read-only", c: ro, typ: cowdtest.CmdTrim, off: 0, length: 512, want: 1},
		{name: "device ENOSPC", c: fullc, typ: cowdtest.CmdWrite, off: 0, length: 512, payload: buf[:512], want: 28},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dst []byte
			if tt.typ == cowdtest.CmdRead && tt.want == 0 {
				dst = make([]byte, tt.length)
			}
			_, err := tt.c.Do(tt.typ, tt.flags, tt.off, tt.length, tt.payload, dst)
			if got := cowdtest.ErrnoOf(err); got != tt.want || (tt.want == 0 && err != nil) {
				t.Fatalf("error = %v, want errno %d", err, tt.want)
			}
		})
	}
	// The connection is still in step after every error.
	if err := rw.Read(make([]byte, 512), 0); err != nil {
		t.Fatalf("read after errors: %v", err)
	}
	if dev.syncs.Load() < 2 {
		t.Errorf("FLUSH and FUA called Sync %d times", dev.syncs.Load())
	}
}

func TestOversizedPayloadKeepsStep(t *testing.T) {
	dev := newMemDevice(64 << 20)
	sock := startServer(t, nbd.Export{Name: "d", Device: dev, Size: 64 << 20, BlockSize: nbd.BlockSizes{Max: 1 << 20}})
	c := dial(t, sock, nil)
	big := make([]byte, 2<<20)
	if err := c.Write(big, 0, false); cowdtest.ErrnoOf(err) != 75 {
		t.Fatalf("oversized write: %v, want EOVERFLOW", err)
	}
	if err := c.Write([]byte{1}, 0, false); err != nil {
		t.Fatalf("write after oversized write: %v", err)
	}
}

func TestBlockStatusExtents(t *testing.T) {
	dev := newMemDevice(64 << 10)
	copy(dev.data[4096:], make([]byte, 4096))
	for i := 8192; i < 16384; i++ {
		dev.data[i] = 1
	}
	sock := startServer(t, nbd.Export{Name: "d", Device: dev, Size: 64 << 10})
	c := dial(t, sock, &cowdtest.DialOptions{BaseAlloc: true})
	got, err := c.BlockStatus(0, 64<<10, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []cowdtest.Extent{{Length: 8192, Flags: 3}, {Length: 8192, Flags: 0}, {Length: 48 << 10, Flags: 3}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("extents (-want +got):\n%s", diff)
	}
	got, err = c.BlockStatus(8192, 1024, cowdtest.FlagReqOne)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]cowdtest.Extent{{Length: 1024, Flags: 0}}, got); diff != "" {
		t.Errorf("REQ_ONE extents (-want +got):\n%s", diff)
	}
}

// TestPipelining sends many requests at once; slow reads of low offsets
// make replies come back out of order.
func TestPipelining(t *testing.T) {
	dev := newMemDevice(1 << 20)
	for i := range dev.data {
		dev.data[i] = byte(i / 4096)
	}
	dev.delay = func(off int64) time.Duration { return time.Duration(256-off/4096) * 20 * time.Microsecond }
	sock := startServer(t, nbd.Export{Name: "d", Device: dev, Size: 1 << 20})
	c := dial(t, sock, &cowdtest.DialOptions{Structured: true})
	var wg sync.WaitGroup
	for i := range 256 {
		wg.Go(func() {
			p := make([]byte, 4096)
			if err := c.Read(p, int64(i)*4096); err != nil {
				t.Error(err)
				return
			}
			if p[0] != byte(i) || p[4095] != byte(i) {
				t.Errorf("block %d read back %d", i, p[0])
			}
		})
	}
	wg.Wait()
}

// TestAbruptDisconnect drops clients mid-request and checks that the server
// keeps serving others and shuts down cleanly (startServer's cleanup).
func TestAbruptDisconnect(t *testing.T) {
	dev := newMemDevice(1 << 20)
	dev.delay = func(int64) time.Duration { return 5 * time.Millisecond }
	sock := startServer(t, nbd.Export{Name: "d", Device: dev, Size: 1 << 20})
	for range 5 {
		c, err := cowdtest.Dial("unix", sock, nil)
		if err != nil {
			t.Fatal(err)
		}
		go c.Read(make([]byte, 1<<20), 0)
		time.Sleep(time.Millisecond)
		c.Abort()
	}
	nc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	nc.Write([]byte("garbage that is not a handshake"))
	nc.Close()
	c := dial(t, sock, nil)
	if err := c.Write([]byte{1, 2, 3}, 10, true); err != nil {
		t.Fatal(err)
	}
}

// TestShutdownAnswersInFlight cancels the server while requests run.
func TestShutdownAnswersInFlight(t *testing.T) {
	dev := newMemDevice(1 << 20)
	dev.delay = func(int64) time.Duration { return 50 * time.Millisecond }
	srv, err := nbd.NewServer(&nbd.Config{Exports: []nbd.Export{{Name: "d", Device: dev, Size: 1 << 20}}})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "s")
	l, err := nbd.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx, l) }()
	c, err := cowdtest.Dial("unix", sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan error)
	go func() { res <- c.Read(make([]byte, 4096), 0) }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if err := <-res; err != nil {
		t.Errorf("in-flight read during shutdown: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

func TestListen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		addr string
		ok   bool
	}{
		{name: "unix", addr: "unix:" + filepath.Join(dir, "a", "s.sock"), ok: true},
		{name: "bare path", addr: filepath.Join(dir, "b.sock"), ok: true},
		{name: "tcp", addr: "tcp:127.0.0.1:0", ok: true},
		{name: "tcp without port", addr: "tcp:localhost", ok: false},
		{name: "nonsense", addr: "carrier-pigeon", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := nbd.Listen(tt.addr)
			if (err == nil) != tt.ok {
				t.Fatalf("Listen(%q) error = %v", tt.addr, err)
			}
			if err == nil {
				l.Close()
			}
		})
	}
	// A live socket is not replaced.
	p := filepath.Join(dir, "live.sock")
	l, err := nbd.Listen(p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := nbd.Listen(p); err == nil {
		t.Fatal("Listen replaced a live socket")
	}
}
