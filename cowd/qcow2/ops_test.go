package qcow2

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// qemuInfo is the part of qemu-img info --output=json the tests compare.
type qemuInfo struct {
	VirtualSize   int64  `json:"virtual-size"`
	ClusterSize   int64  `json:"cluster-size"`
	BackingFile   string `json:"backing-filename"`
	BackingFormat string `json:"backing-filename-format"`
	Specific      struct {
		Data struct {
			Compat        string `json:"compat"`
			LazyRefcounts bool   `json:"lazy-refcounts"`
			RefcountBits  int    `json:"refcount-bits"`
			ExtendedL2    bool   `json:"extended-l2"`
			Corrupt       bool   `json:"corrupt"`
		} `json:"data"`
	} `json:"format-specific"`
}

func readQemuInfo(t *testing.T, img string) qemuInfo {
	t.Helper()
	var i qemuInfo
	if err := json.Unmarshal([]byte(mustTool(t, "qemu-img", "info", "-U", "--output=json", img)), &i); err != nil {
		t.Fatal(err)
	}
	return i
}

func TestCreate(t *testing.T) {
	tests := []struct {
		name string
		opts CreateOptions
		want qemuInfo
	}{
		{name: "default", opts: CreateOptions{Size: 1 << 30}},
		{name: "raw backing", opts: CreateOptions{BackingFile: "base.raw", BackingFormat: "raw"}},
		{name: "probed qcow2 backing", opts: CreateOptions{BackingFile: "base.qcow2", Size: 3 << 20}},
		{name: "version 2", opts: CreateOptions{Size: 100 << 20, Version: 2, BackingFile: "base.raw", BackingFormat: "raw"}},
		{name: "extended L2", opts: CreateOptions{Size: 1 << 30, ExtendedL2: true, ClusterSize: 128 << 10}},
		{name: "lazy refcounts", opts: CreateOptions{Size: 1 << 30, LazyRefcounts: true}},
		{name: "1-bit refcounts", opts: CreateOptions{Size: 1 << 30, RefcountBits: 1, ClusterSize: 4096}},
		{name: "64-bit refcounts", opts: CreateOptions{Size: 1 << 30, RefcountBits: 64, ClusterSize: 4096}},
		{name: "512-byte clusters, big", opts: CreateOptions{Size: 8 << 30, ClusterSize: 512}},
		{name: "2 MiB clusters", opts: CreateOptions{Size: 1 << 40, ClusterSize: 2 << 20}},
		{name: "odd size", opts: CreateOptions{Size: 1000001}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "base.raw"), randomBytes(5<<20, 1))
			mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", filepath.Join(dir, "base.qcow2"), "7M")
			img := filepath.Join(dir, "new.qcow2")
			h, err := Create(img, &tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if code, out := qemuCheck(t, img); code != 0 {
				t.Fatalf("qemu-img check exit %d:\n%s", code, out)
			}
			got := readQemuInfo(t, img)
			want := qemuInfo{VirtualSize: int64(h.Size), ClusterSize: h.ClusterSize(), BackingFile: tt.opts.BackingFile,
				BackingFormat: h.BackingFormat}
			want.Specific.Data.Compat = map[uint32]string{2: "0.10", 3: "1.1"}[h.Version]
			want.Specific.Data.LazyRefcounts = tt.opts.LazyRefcounts
			want.Specific.Data.RefcountBits = h.RefcountBits()
			want.Specific.Data.ExtendedL2 = tt.opts.ExtendedL2
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("qemu-img info (-want +got):\n%s", diff)
			}
			// The image works: write across it, close, check again.
			d := openTest(t, img, nil)
			off := d.Size() / 2
			if _, err := d.WriteAt(bytes.Repeat([]byte{0x5a}, 100<<10), off); err != nil {
				t.Fatal(err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if code, out := qemuCheck(t, img); code != 0 {
				t.Fatalf("qemu-img check after a write: exit %d:\n%s", code, out)
			}
			if out := mustTool(t, "qemu-io", "-r", "-U", "-f", "qcow2", "-c", fmt.Sprintf("read -P 0x5a %d %d", off, 100<<10), img); bytes.Contains([]byte(out), []byte("failed")) {
				t.Fatalf("qemu-io reads back something else:\n%s", out)
			}
		})
	}
}

func TestCreateErrors(t *testing.T) {
	dir := t.TempDir()
	exists := filepath.Join(dir, "exists.qcow2")
	writeFile(t, exists, nil)
	tests := []struct {
		name string
		path string
		opts CreateOptions
		want error
	}{
		{"extended L2 with small clusters", "a", CreateOptions{Size: 1 << 20, ExtendedL2: true, ClusterSize: 4096}, ErrFormat},
		{"lazy refcounts in version 2", "b", CreateOptions{Size: 1 << 20, Version: 2, LazyRefcounts: true}, ErrFormat},
		{"cluster size", "c", CreateOptions{Size: 1 << 20, ClusterSize: 3000}, ErrFormat},
		{"refcount bits", "d", CreateOptions{Size: 1 << 20, RefcountBits: 12}, ErrFormat},
		{"missing backing file", "e", CreateOptions{BackingFile: "nope.raw"}, os.ErrNotExist},
		{"backing format", "f", CreateOptions{Size: 1 << 20, BackingFile: "exists.qcow2", BackingFormat: "vmdk"}, ErrUnsupported},
		{"existing file", "exists.qcow2", CreateOptions{Size: 1 << 20}, os.ErrExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Create(filepath.Join(dir, tt.path), &tt.opts); !errors.Is(err, tt.want) {
				t.Fatalf("Create: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCommit(t *testing.T) {
	for _, tt := range []struct {
		name    string
		backing string // "raw" or "qcow2"
		opts    string
	}{
		{"raw backing", "raw", ""},
		{"qcow2 backing", "qcow2", ""},
		{"extended L2 over qcow2", "qcow2", "extended_l2=on"},
		{"version 2 over raw", "raw", "compat=0.10"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "base.raw"), randomBytes(imageSize, 3))
			backing := filepath.Join(dir, "base.raw")
			if tt.backing == "qcow2" {
				backing = filepath.Join(dir, "mid.qcow2")
				qemuCreate(t, backing, "cluster_size=32k", filepath.Join(dir, "base.raw"), "raw")
				mustTool(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x10 1M 1M", backing)
			}
			img := filepath.Join(dir, "ov.qcow2")
			qemuCreate(t, img, tt.opts, backing, tt.backing)
			qemuScribble(t, img)
			want := qemuRead(t, img)
			var last [2]int64
			if err := Commit(context.Background(), img, func(done, total int64) { last = [2]int64{done, total} }); err != nil {
				t.Fatal(err)
			}
			if last[0] != last[1] || last[1] == 0 {
				t.Errorf("last progress %d of %d", last[0], last[1])
			}
			requireSame(t, "overlay after commit", want, qemuRead(t, img))
			requireSame(t, "backing file after commit", want, qemuRead(t, backing))
			for _, f := range []string{img, backing} {
				if tt.backing == "raw" && f == backing {
					continue
				}
				if code, out := qemuCheck(t, f); code != 0 {
					t.Fatalf("qemu-img check %s: exit %d\n%s", filepath.Base(f), code, out)
				}
			}
			im, err := OpenImage(img, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			exts, err := im.Extents(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(exts) != 1 || exts[0].State != ExtentBacking {
				t.Errorf("overlay after commit: %v, want one backing extent", exts)
			}
		})
	}
}

func TestMakeEmpty(t *testing.T) {
	dir := t.TempDir()
	b := baseRaw(t, dir)
	img := filepath.Join(dir, "ov.qcow2")
	qemuCreate(t, img, "", b, "raw")
	want := qemuRead(t, img)
	qemuScribble(t, img)
	if err := MakeEmpty(context.Background(), img); err != nil {
		t.Fatal(err)
	}
	requireSame(t, "emptied image", want, qemuRead(t, img))
	if code, out := qemuCheck(t, img); code != 0 {
		t.Fatalf("qemu-img check exit %d\n%s", code, out)
	}
	if fi, err := os.Stat(img); err != nil || fi.Size() > 5<<16 {
		t.Errorf("emptied image is %d bytes", fi.Size())
	}
}

// TestRefcountTableGrowth fills an image whose refcount table covers
// only 2 MiB of file, so that it must move to a larger one.
func TestRefcountTableGrowth(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "ov.qcow2")
	mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512,refcount_bits=64", img, "8M")
	d := openTest(t, img, nil)
	before := d.Header()
	want := randomBytes(8<<20, 9)
	for off := 0; off < len(want); off += 256 << 10 {
		if _, err := d.WriteAt(want[off:off+256<<10], int64(off)); err != nil {
			t.Fatal(err)
		}
		if off%(2<<20) == 0 {
			if err := d.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	im, err := OpenImage(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	after := im.Header
	im.Close()
	if after.RefcountTableOffset == before.RefcountTableOffset || after.RefcountTableClusters <= before.RefcountTableClusters {
		t.Errorf("refcount table %#x/%d, before %#x/%d: did not grow", after.RefcountTableOffset,
			after.RefcountTableClusters, before.RefcountTableOffset, before.RefcountTableClusters)
	}
	if code, out := qemuCheck(t, img); code != 0 {
		t.Fatalf("qemu-img check exit %d\n%s", code, out)
	}
	requireSame(t, "content", want, qemuRead(t, img))
}

// TestLazyRefcountsDirty abandons a lazy-refcount image without closing
// it (its refcounts on disk are stale and the dirty bit set), then checks
// that Open rebuilds them.
func TestLazyRefcountsDirty(t *testing.T) {
	dir := t.TempDir()
	b := baseRaw(t, dir)
	img := filepath.Join(dir, "ov.qcow2")
	qemuCreate(t, img, "lazy_refcounts=on,cluster_size=4k", b, "raw")
	d := openTest(t, img, nil)
	p := randomBytes(3<<20, 4)
	if _, err := d.WriteAt(p, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	want := readAll(t, d)
	d.closed.Store(true)
	d.closeFiles() // "crash": the refcount blocks were never written
	if info := readQemuInfo(t, img); info.Specific.Data.Corrupt {
		t.Fatal("image marked corrupt")
	}
	if code, _ := qemuCheck(t, img); code != 2 {
		t.Errorf("qemu-img check of the dirty image: exit %d, want 2 (stale refcounts)", code)
	}
	im, err := OpenImage(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := im.Check(context.Background()); err != nil || !r.Dirty || r.ExitCode() != 2 {
		t.Errorf("Check of the dirty image: %+v, %v", r, err)
	}
	im.Close()
	d = openTest(t, img, nil) // rebuilds the refcounts
	requireSame(t, "content after the rebuild", want, readAll(t, d))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if code, out := qemuCheck(t, img); code != 0 {
		t.Fatalf("qemu-img check after the rebuild: exit %d\n%s", code, out)
	}
}

// TestCheckMatchesQemu damages images in the ways qemu-img check knows
// and requires Image.Check to reach the same verdict, and Repair to fix
// what QEMU's repair fixes.
func TestCheckMatchesQemu(t *testing.T) {
	type damage func(t *testing.T, img string, l2 int64)
	refcountAt := func(c int64) int64 { return 2<<16 + c*2 } // first refcount block, 16-bit entries
	// structural: QEMU and cowd count the consequences of a bad entry
	// differently; only the verdict (exit code) must agree.
	tests := []struct {
		name       string
		damage     damage
		repairable bool
		structural bool
	}{
		{"clean", func(*testing.T, string, int64) {}, true, false},
		{"leak", func(t *testing.T, img string, _ int64) {
			patch(t, img, refcountAt(7), []byte{0, 1}) // a free cluster inside the file in use
		}, true, false},
		{"refcount past the end of the file", func(t *testing.T, img string, _ int64) {
			patch(t, img, refcountAt(100), []byte{0, 1}) // qemu-img ignores it, so does cowd
		}, true, false},
		{"missing refcount", func(t *testing.T, img string, l2 int64) {
			f, _ := os.ReadFile(img)
			host := int64(binary.BigEndian.Uint64(f[l2:]) & offsetMask)
			patch(t, img, refcountAt(host>>16), []byte{0, 0})
		}, true, false},
		{"refcount too high", func(t *testing.T, img string, l2 int64) {
			f, _ := os.ReadFile(img)
			host := int64(binary.BigEndian.Uint64(f[l2:]) & offsetMask)
			patch(t, img, refcountAt(host>>16), []byte{0, 2})
		}, true, false},
		{"COPIED flag missing", func(t *testing.T, img string, l2 int64) {
			f, _ := os.ReadFile(img)
			patch(t, img, l2, be64(binary.BigEndian.Uint64(f[l2:])&^flagCopied))
		}, true, false},
		{"unaligned entry", func(t *testing.T, img string, l2 int64) {
			f, _ := os.ReadFile(img)
			patch(t, img, l2+8, be64(binary.BigEndian.Uint64(f[l2:])+4096))
		}, false, true},
		{"cross-linked", func(t *testing.T, img string, l2 int64) {
			f, _ := os.ReadFile(img)
			patch(t, img, l2+8*5, f[l2:l2+8])
		}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "ov.qcow2")
			mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "16M")
			mustTool(t, "qemu-io", "-c", "write -P 1 0 256k", img)
			f, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			l2 := int64(binary.BigEndian.Uint64(f[3<<16:]) & offsetMask)
			tt.damage(t, img, l2)
			var q struct {
				Errors int `json:"corruptions"`
				Leaks  int `json:"leaks"`
			}
			out, code := tool(t, "qemu-img", "check", "-U", "--output=json", img)
			if err := json.Unmarshal([]byte(out[bytes.IndexByte([]byte(out), '{'):]), &q); err != nil {
				t.Fatalf("qemu-img check: %v\n%s", err, out)
			}
			im, err := OpenImage(img, nil)
			if err != nil {
				t.Fatal(err)
			}
			r, err := im.Check(context.Background())
			im.Close()
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintf("exit %d, %d errors, %d leaks", r.ExitCode(), r.Corruptions, r.Leaks)
			want := fmt.Sprintf("exit %d, %d errors, %d leaks", code, q.Errors, q.Leaks)
			if tt.structural {
				got, want = fmt.Sprint(r.ExitCode()), fmt.Sprint(code)
			}
			if got != want {
				t.Errorf("Check: %s; qemu-img check: %s\nours: %q\nqemu:\n%s", got, want, r.Errors, out)
			}
			err = Repair(img)
			if !tt.repairable {
				if err == nil {
					t.Fatal("Repair succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if code, out := qemuCheck(t, img); code != 0 {
				t.Fatalf("qemu-img check after Repair: exit %d\n%s", code, out)
			}
		})
	}
}

// TestExtentsMatchQemuMap compares Image.Extents and BlockStatus with
// qemu-img map on an image with data, zero, compressed and backing ranges.
func TestExtentsMatchQemuMap(t *testing.T) {
	for _, opts := range []string{"", "extended_l2=on", "compat=0.10"} {
		t.Run(opts+"x", func(t *testing.T) {
			dir := t.TempDir()
			b := baseRaw(t, dir)
			img := filepath.Join(dir, "ov.qcow2")
			qemuCreate(t, img, opts, b, "raw")
			qemuScribble(t, img)
			var qm []struct {
				Start, Length, Offset int64
				Depth                 int
				Present, Zero, Data   bool
			}
			if err := json.Unmarshal([]byte(mustTool(t, "qemu-img", "map", "-U", "--output=json", img)), &qm); err != nil {
				t.Fatal(err)
			}
			const unit = 512
			want := make([]ExtentState, imageSize/unit)
			for _, e := range qm {
				st := ExtentBacking
				switch {
				case e.Depth == 0 && e.Data:
					st = ExtentData
				case e.Depth == 0 && e.Zero && e.Present:
					st = ExtentZero
				}
				for i := e.Start / unit; i < (e.Start+e.Length)/unit; i++ {
					want[i] = st
				}
			}
			im, err := OpenImage(img, nil)
			if err != nil {
				t.Fatal(err)
			}
			exts, err := im.Extents(context.Background())
			im.Close()
			if err != nil {
				t.Fatal(err)
			}
			got := make([]ExtentState, imageSize/unit)
			for _, e := range exts {
				for i := e.Start / unit; i < (e.Start+e.Length)/unit; i++ {
					got[i] = e.State
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("extents (-qemu-img map +ours):\n%s", diff)
			}
			// BlockStatus: this image's zeroes are holes; the raw base's
			// end reads as a hole too; everything else is data.
			d := openTest(t, img, nil)
			defer d.Close()
			baseEnd := int64(imageSize - 200<<10 - 512)
			for off := int64(0); off < d.Size(); {
				run, hole, zero, err := d.BlockStatus(off, d.Size()-off)
				if err != nil {
					t.Fatal(err)
				}
				for i := off / unit; i < (off+run)/unit; i++ {
					st := got[i]
					wantZero := st == ExtentZero || (st == ExtentBacking && i*unit >= baseEnd)
					if zero != wantZero || (hole && !zero) {
						t.Fatalf("BlockStatus at %d: run %d hole %t zero %t; extent state at %d is %v", off, run, hole, zero, i*unit, st)
					}
				}
				off += run
			}
		})
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	b := baseRaw(t, dir)
	img := filepath.Join(dir, "ov.qcow2")
	qemuCreate(t, img, "cluster_size=4k", b, "raw")
	d := openTest(t, img, nil)
	defer d.Close()
	p := randomBytes(1<<20, 8)
	if _, err := d.WriteAt(p, 3<<20); err != nil {
		t.Fatal(err)
	}
	want := readAll(t, d)
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	requireSame(t, "after Reload", want, readAll(t, d))
	if _, err := d.WriteAt(p, 5<<20); err != nil {
		t.Fatal(err)
	}
}
