package cowdtest_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/xentmem/xentmem/cowd"
	"github.com/xentmem/xentmem/internal/cowdtest"
)

const mib = 1 << 20

// TestQemuIO writes through cowd with qemu-io, computes the expected image
// independently in Go, and compares it with what qemu-img reads back.
func TestQemuIO(t *testing.T) {
	s := serve(t, 8*mib, 64<<10, nil)
	m := cowdtest.NewModel(s.base)
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
		{"flush", func() {}},
	}
	args := []string{"-f", "raw"}
	for _, st := range steps {
		args = append(args, "-c", st.cmd)
		st.apply()
	}
	args = append(args, "-c", "read -P 0xab 1000 64536", "-c", "read -P 0 2M 1M", s.uri)
	out := runTool(t, "qemu-io", args...)
	if strings.Contains(out, "Pattern verification failed") || strings.Contains(out, "failed") {
		t.Fatalf("qemu-io:\n%s", out)
	}
	dump := filepath.Join(s.dir, "dump.raw")
	runTool(t, "qemu-img", "convert", "-f", "raw", "-O", "raw", s.uri, dump)
	got, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(got, 0); err != nil {
		t.Fatalf("image read by qemu-img: %v", err)
	}
	if err := m.Check(s.contents(t), 0); err != nil {
		t.Fatalf("image in the engine: %v", err)
	}
}

// TestQemuImgConvert writes a whole image through cowd with qemu-img and
// checks it with qemu-img compare and byte for byte.
func TestQemuImgConvert(t *testing.T) {
	s := serve(t, 8*mib, 64<<10, nil)
	src := filepath.Join(s.dir, "src.raw")
	want := randomBytes(8*mib, 99)
	clear(want[3*mib : 4*mib]) // a zero range lets qemu-img use WRITE_ZEROES
	if err := os.WriteFile(src, want, 0o600); err != nil {
		t.Fatal(err)
	}
	runTool(t, "qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src, s.uri)
	runTool(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", src, s.uri)
	if d := firstDiff(want, s.contents(t)); d != "" {
		t.Fatalf("engine content after qemu-img convert: %s", d)
	}
	info := runTool(t, "qemu-img", "info", "--output=json", s.uri)
	var v struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal([]byte(info), &v); err != nil || v.VirtualSize != 8*mib {
		t.Fatalf("qemu-img info: %v %s", err, info)
	}
}

// TestFioVerify runs fio's nbd engine with crc32c verification, two jobs
// on two connections at once.
func TestFioVerify(t *testing.T) {
	fio := cowdtest.RequireFioNBD(t)
	s := serve(t, 16*mib, 64<<10, nil)
	// fio writes verify state files (local-verify-*.state) into its working
	// directory: keep them in the test's temporary directory.
	cmd := exec.Command(fio, "--name=verify", "--ioengine=nbd", "--uri="+s.uri,
		"--rw=randwrite", "--bs=4k", "--iodepth=16", "--size=8m", "--numjobs=2", "--offset_increment=8m",
		"--verify=crc32c", "--do_verify=1", "--verify_fatal=1", "--output-format=json")
	cmd.Dir = s.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fio: %v\n%s", err, out)
	}
	var res struct {
		Jobs []struct {
			Error int `json:"error"`
			Write struct {
				IOBytes int64 `json:"io_bytes"`
			} `json:"write"`
			Read struct {
				IOBytes int64 `json:"io_bytes"`
			} `json:"read"`
		} `json:"jobs"`
	}
	start := bytes.IndexByte(out, '{')
	if start < 0 || json.Unmarshal(out[start:], &res) != nil || len(res.Jobs) != 2 {
		t.Fatalf("fio output:\n%s", out)
	}
	for i, j := range res.Jobs {
		if j.Error != 0 || j.Write.IOBytes != 8*mib || j.Read.IOBytes != 8*mib {
			t.Errorf("fio job %d: error %d, wrote %d, verified %d bytes", i, j.Error, j.Write.IOBytes, j.Read.IOBytes)
		}
	}
}

// TestNbdinfo checks the advertised export and the base:allocation map.
func TestNbdinfo(t *testing.T) {
	s := serve(t, 4*mib, 64<<10, nil)
	c, err := cowdtest.Dial("unix", s.sock, &cowdtest.DialOptions{Export: "disk"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Trim(mib, 256<<10); err != nil {
		t.Fatal(err)
	}
	if err := c.Write([]byte{1}, mib+300<<10, false); err != nil {
		t.Fatal(err)
	}
	var info struct {
		Exports []struct {
			Size      int64 `json:"export-size"`
			MultiConn bool  `json:"can_multi_conn"`
			FastZero  bool  `json:"can_fast_zero"`
			Trim      bool  `json:"can_trim"`
			Preferred int   `json:"block_size_preferred"`
		} `json:"exports"`
	}
	if err := json.Unmarshal([]byte(runTool(t, "nbdinfo", "--json", s.uri)), &info); err != nil || len(info.Exports) != 1 {
		t.Fatalf("nbdinfo --json: %v", err)
	}
	e := info.Exports[0]
	if e.Size != 4*mib || !e.MultiConn || !e.FastZero || !e.Trim || e.Preferred != 64<<10 {
		t.Errorf("nbdinfo: %+v", e)
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
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("nbdinfo --map (-want +got):\n%s", diff)
	}
	if out := runTool(t, "nbdinfo", "--list", "nbd+unix:///?socket="+s.sock); !strings.Contains(out, `export="disk"`) {
		t.Errorf("nbdinfo --list:\n%s", out)
	}
}

// TestNbdcopy copies an image in and out with nbdcopy, which uses four
// connections when the server offers multi-conn.
func TestNbdcopy(t *testing.T) {
	s := serve(t, 16*mib, 64<<10, nil)
	want := randomBytes(16*mib, 7)
	clear(want[5*mib : 7*mib])
	src, dst := filepath.Join(s.dir, "src.raw"), filepath.Join(s.dir, "dst.raw")
	if err := os.WriteFile(src, want, 0o600); err != nil {
		t.Fatal(err)
	}
	runTool(t, "nbdcopy", "--connections=4", "--requests=16", src, s.uri)
	runTool(t, "nbdcopy", "--connections=4", s.uri, dst)
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if d := firstDiff(want, got); d != "" {
		t.Fatalf("nbdcopy round trip: %s", d)
	}
}

// TestMultiConnFlush writes from several connections at once, then flushes
// on one: the metadata on disk must cover every connection's writes.
func TestMultiConnFlush(t *testing.T) {
	s := serve(t, 8*mib, 64<<10, nil)
	const conns = 4
	m := cowdtest.NewModel(s.base)
	var mu sync.Mutex
	var wg sync.WaitGroup
	clients := make([]*cowdtest.Client, conns)
	for i := range clients {
		c, err := cowdtest.Dial("unix", s.sock, &cowdtest.DialOptions{Export: "disk", Structured: i%2 == 0})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if c.Flags&cowdtest.TFCanMultiConn == 0 {
			t.Fatal("multi-conn not advertised")
		}
		clients[i] = c
	}
	for i, c := range clients {
		wg.Go(func() {
			p := bytes.Repeat([]byte{byte(0x10 + i)}, 12<<10)
			for k := range 32 {
				off := int64(k*conns+i) * 64 << 10 // each connection owns every 4th block
				if err := c.Write(p, off+int64(k)*100, false); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				m.Write(p, off+int64(k)*100)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := clients[0].Flush(); err != nil {
		t.Fatal(err)
	}
	im, err := cowd.OpenImage(s.img, &cowd.ImageOptions{ForceShare: true})
	if err != nil {
		t.Fatal(err)
	}
	st := im.Stats()
	im.Close()
	if st.Mapped != 32*conns {
		t.Errorf("after FLUSH the on-disk map has %d blocks, want %d", st.Mapped, 32*conns)
	}
	got := make([]byte, 8*mib)
	for off := 0; off < len(got); off += mib {
		if err := clients[3].Read(got[off:off+mib], int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Check(got, 0); err != nil {
		t.Fatal(err)
	}
}
