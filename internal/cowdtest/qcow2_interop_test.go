package cowdtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/xentmem/xentmem/cowd/nbd"
	"github.com/xentmem/xentmem/cowd/qcow2"
	"github.com/xentmem/xentmem/internal/cowdtest"
)

// servedQcow2 is a qcow2 image served in-process on a unix socket.
type servedQcow2 struct {
	dir, img, sock, uri string
	base                []byte // content of the raw base
	dev                 *qcow2.Device
}

// newQcow2Overlay writes a raw base of size bytes and creates a qcow2
// overlay over it with qemu-img create (opts as for -o), returning the
// directory, image path and base content.
func newQcow2Overlay(t *testing.T, size int, opts string) (dir, img string, base []byte) {
	t.Helper()
	dir = t.TempDir()
	base = randomBytes(size, uint64(size)+7)
	if err := os.WriteFile(filepath.Join(dir, "base.raw"), base, 0o444); err != nil {
		t.Fatal(err)
	}
	img = filepath.Join(dir, "ov.qcow2")
	args := []string{"create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw"}
	if opts != "" {
		args = append(args, "-o", opts)
	}
	runTool(t, "qemu-img", append(args, img)...)
	return dir, img, base
}

// serveQcow2 serves a qcow2 image until the test ends; at cleanup it stops
// the server, closes the image and requires qemu-img check to exit 0.
func serveQcow2(t *testing.T, dir, img string, opts *qcow2.Options) *servedQcow2 {
	t.Helper()
	dev, err := qcow2.Open(img, opts)
	if err != nil {
		t.Fatal(err)
	}
	s := &servedQcow2{dir: dir, img: img, dev: dev, sock: filepath.Join(dir, "s.sock")}
	s.uri = "nbd+unix:///disk?socket=" + s.sock
	srv, err := nbd.NewServer(&nbd.Config{
		Exports: []nbd.Export{{Name: "disk", Device: dev, Size: dev.Size(), MultiConn: true,
			BlockSize: nbd.BlockSizes{Min: 1, Preferred: uint32(max(dev.SubclusterSize(), 4096)), Max: 32 << 20}}},
		Logger: zaptest.NewLogger(t).Named("nbd"),
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := nbd.Listen("unix:" + s.sock)
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
		if err := dev.Close(); err != nil {
			t.Errorf("close image: %v", err)
		}
		requireQemuClean(t, img)
	})
	return s
}

// optsName turns qemu-img -o options into a subtest name.
func optsName(opts string) string {
	if opts == "" {
		return "default"
	}
	return strings.NewReplacer("=", "-", ",", "+").Replace(opts)
}

// requireQemuClean requires qemu-img check to exit 0.
func requireQemuClean(t *testing.T, img string) {
	t.Helper()
	path := cowdtest.RequireTool(t, "qemu-img")
	out, err := exec.Command(path, "check", img).CombinedOutput()
	if err != nil {
		t.Errorf("qemu-img check %s: %v\n%s", img, err, out)
	}
}

// qcow2Content reads the guest view of an image with qemu-img.
func qcow2Content(t *testing.T, img string) []byte {
	t.Helper()
	dump := filepath.Join(t.TempDir(), "dump.raw")
	runTool(t, "qemu-img", "convert", "-U", "-O", "raw", img, dump)
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestQcow2QemuIO writes through cowd -p qcow2 with qemu-io over NBD for
// several image flavours, then checks with qemu-img check (exit 0) and
// qemu-img compare against the content computed independently in Go.
func TestQcow2QemuIO(t *testing.T) {
	for _, opts := range []string{"", "compat=0.10", "extended_l2=on,cluster_size=128k", "lazy_refcounts=on", "cluster_size=4k,refcount_bits=8"} {
		t.Run(optsName(opts), func(t *testing.T) {
			dir, img, base := newQcow2Overlay(t, 8*mib, opts)
			m := cowdtest.NewModel(base)
			fill := func(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }
			steps := []struct {
				cmd   string
				apply func()
			}{
				{"write -P 0xab 1000 70000", func() { m.Write(fill(0xab, 70000), 1000) }},
				{"write -P 0x11 65536 131072", func() { m.Write(fill(0x11, 131072), 65536) }},
				{"write -P 0x22 196607 3", func() { m.Write(fill(0x22, 3), 196607) }},
				{"write -z 2M 1M", func() { m.Zero(2*mib, mib) }},
				{"write -z -u 3M 192k", func() { m.Zero(3*mib, 192<<10) }},
				{"discard 4M 128k", func() { m.Trim(4*mib, 128<<10) }},
				{"write -P 0x5 8388607 1", func() { m.Write(fill(0x5, 1), 8*mib-1) }},
				{"aio_write -P 0x66 5M 64k", func() { m.Write(fill(0x66, 64<<10), 5*mib) }},
				{"aio_flush", func() {}},
				{"write -P 0x77 6M 4k", func() { m.Write(fill(0x77, 4096), 6*mib) }},
				{"write -z 6M 512", func() { m.Zero(6*mib, 512) }},
				{"flush", func() {}},
			}
			s := serveQcow2(t, dir, img, nil)
			args := []string{"-f", "raw"}
			for _, st := range steps {
				args = append(args, "-c", st.cmd)
				st.apply()
			}
			out := runTool(t, "qemu-io", append(args, "-c", "read -P 0xab 1000 64536", "-c", "read -P 0 2M 1M", s.uri)...)
			if strings.Contains(out, "Pattern verification failed") || strings.Contains(out, "failed") {
				t.Fatalf("qemu-io:\n%s", out)
			}
			got := make([]byte, s.dev.Size())
			if _, err := s.dev.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			if err := m.Check(got, 0); err != nil {
				t.Fatalf("engine content: %v", err)
			}
			m.Settle(got, 0) // discarded bytes read back as whatever cowd left
			expected := filepath.Join(dir, "expected.raw")
			if err := os.WriteFile(expected, m.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			runTool(t, "qemu-img", "compare", "-U", "-f", "raw", "-F", "qcow2", expected, img)
		})
	}
}

// TestQcow2QemuWritesCowdServes writes into a qcow2 image with qemu-io,
// then serves it with cowd and reads it back over NBD.
func TestQcow2QemuWritesCowdServes(t *testing.T) {
	dir, img, _ := newQcow2Overlay(t, 8*mib, "extended_l2=on")
	runTool(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x31 100k 300k", "-c", "write -z 1M 512k",
		"-c", "write -P 0x32 2044k 8k", "-c", "discard 3M 64k", img)
	want := qcow2Content(t, img)
	s := serveQcow2(t, dir, img, nil)
	c, err := cowdtest.Dial("unix", s.sock, &cowdtest.DialOptions{Export: "disk", Structured: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make([]byte, len(want))
	for off := 0; off < len(got); off += mib {
		if err := c.Read(got[off:off+mib], int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	if d := firstDiff(want, got); d != "" {
		t.Fatalf("content over NBD differs from qemu-img's view: %s", d)
	}
}

// TestQcow2Fio runs fio's nbd engine with verification over cowd -p qcow2,
// two jobs on two connections, on an image with small clusters so that
// allocation and L2 table creation race with I/O.
func TestQcow2Fio(t *testing.T) {
	fio := cowdtest.RequireFioNBD(t)
	for _, opts := range []string{"cluster_size=16k", "extended_l2=on,cluster_size=64k"} {
		t.Run(optsName(opts), func(t *testing.T) {
			dir, img, _ := newQcow2Overlay(t, 16*mib, opts)
			s := serveQcow2(t, dir, img, &qcow2.Options{CacheSize: 64 << 10})
			out, err := exec.Command(fio, "--name=verify", "--ioengine=nbd", "--uri="+s.uri,
				"--rw=randwrite", "--bs=4k", "--iodepth=16", "--size=8m", "--numjobs=2", "--offset_increment=8m",
				"--verify=crc32c", "--do_verify=1", "--verify_fatal=1", "--output-format=json").CombinedOutput()
			if err != nil {
				t.Fatalf("fio: %v\n%s", err, out)
			}
			var res struct {
				Jobs []struct {
					Error int `json:"error"`
				} `json:"jobs"`
			}
			start := bytes.IndexByte(out, '{')
			if start < 0 || json.Unmarshal(out[start:], &res) != nil || len(res.Jobs) != 2 {
				t.Fatalf("fio output:\n%s", out)
			}
			for i, j := range res.Jobs {
				if j.Error != 0 {
					t.Errorf("fio job %d: error %d", i, j.Error)
				}
			}
		})
	}
}

// TestQcow2Nbdinfo checks base:allocation over a qcow2 overlay: written
// data and the backing file are data, zeroed clusters are holes.
func TestQcow2Nbdinfo(t *testing.T) {
	dir, img, _ := newQcow2Overlay(t, 4*mib, "")
	s := serveQcow2(t, dir, img, nil)
	c, err := cowdtest.Dial("unix", s.sock, &cowdtest.DialOptions{Export: "disk"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteZeroes(mib, 256<<10, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Write([]byte{1}, mib+300<<10, false); err != nil {
		t.Fatal(err)
	}
	type ext struct {
		Offset int64  `json:"offset"`
		Length int64  `json:"length"`
		Desc   string `json:"description"`
	}
	var got []ext
	if err := json.Unmarshal([]byte(runTool(t, "nbdinfo", "--map", "--json", s.uri)), &got); err != nil {
		t.Fatal(err)
	}
	want := []ext{{0, mib, "data"}, {mib, 256 << 10, "hole,zero"}, {mib + 256<<10, 3*mib - 256<<10, "data"}}
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Errorf("nbdinfo --map: got %v, want %v", got, want)
	}
}
