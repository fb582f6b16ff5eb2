package qcow2

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xentmem/xentmem/internal/cowdtest"
)

// imageSize is the virtual size of interop test images: not a multiple of
// any cluster size, so the last cluster is partial.
const imageSize = 8*mib + 64<<10 + 3*512

// chainVariant builds a qcow2 image (and its backing chain) with QEMU's
// tools in dir and returns the image path.
type chainVariant struct {
	name  string
	build func(t *testing.T, dir string) string
}

// baseRaw writes a raw base shorter than imageSize (reads past its end
// must be zeroes).
func baseRaw(t *testing.T, dir string) string {
	p := filepath.Join(dir, "base.raw")
	writeFile(t, p, randomBytes(imageSize-200<<10-512, 11))
	return p
}

func qemuCreate(t *testing.T, img string, opts string, backing, format string) {
	args := []string{"create", "-q", "-f", "qcow2"}
	if opts != "" {
		args = append(args, "-o", opts)
	}
	if backing != "" {
		args = append(args, "-b", filepath.Base(backing), "-F", format)
	}
	args = append(args, img, fmt.Sprint(imageSize))
	mustTool(t, "qemu-img", args...)
}

// qemuScribble writes a fixed mix of data, zeroes and discards with qemu-io.
func qemuScribble(t *testing.T, img string) {
	mustTool(t, "qemu-io", "-f", "qcow2",
		"-c", "write -P 0x33 100k 300k",
		"-c", "write -z 1M 256k",
		"-c", "write -P 0x44 2M 64k",
		"-c", "discard 2M 64k",
		"-c", "write -P 0x55 3000k 5k",
		"-c", "write -P 0x66 8M 64k",
		img)
}

func compressedImage(t *testing.T, dir, name string, backing string) string {
	src := filepath.Join(dir, name+".src.raw")
	b := randomBytes(imageSize, 5)
	for i := 0; i < len(b); i += 3 { // compressible, not all zeroes
		b[i] = 0
	}
	clear(b[4*mib : 5*mib])
	writeFile(t, src, b)
	out := filepath.Join(dir, name)
	args := []string{"convert", "-q", "-c", "-f", "raw", "-O", "qcow2"}
	if backing != "" {
		args = append(args, "-o", "backing_file="+filepath.Base(backing)+",backing_fmt=raw")
	}
	mustTool(t, "qemu-img", append(args, src, out)...)
	return out
}

var chainVariants = []chainVariant{
	{"v3-raw", func(t *testing.T, dir string) string {
		b := baseRaw(t, dir)
		img := filepath.Join(dir, "ov.qcow2")
		qemuCreate(t, img, "", b, "raw")
		return img
	}},
	{"v2-raw", func(t *testing.T, dir string) string {
		b := baseRaw(t, dir)
		img := filepath.Join(dir, "ov.qcow2")
		qemuCreate(t, img, "compat=0.10", b, "raw")
		qemuScribble(t, img)
		return img
	}},
	{"v2-none", func(t *testing.T, dir string) string {
		img := filepath.Join(dir, "ov.qcow2")
		qemuCreate(t, img, "compat=0.10", "", "")
		qemuScribble(t, img)
		return img
	}},
	{"extended-l2", func(t *testing.T, dir string) string {
		b := baseRaw(t, dir)
		img := filepath.Join(dir, "ov.qcow2")
		qemuCreate(t, img, "extended_l2=on,cluster_size=128k", b, "raw")
		qemuScribble(t, img)
		return img
	}},
	{"extended-l2-none", func(t *testing.T, dir string) string {
		img := filepath.Join(dir, "ov.qcow2")
		qemuCreate(t, img, "extended_l2=on,cluster_size=32k", "", "")
		return img
	}},
	{"lazy-refcounts", func(t *testing.T, dir string) string {
		b := baseRaw(t, dir)
		img := filepath.Join(dir, "ov.qcow2")
		qemuCreate(t, img, "lazy_refcounts=on", b, "raw")
		return img
	}},
	{"qcow2-chain", func(t *testing.T, dir string) string {
		b := baseRaw(t, dir)
		mid := filepath.Join(dir, "mid.qcow2")
		qemuCreate(t, mid, "cluster_size=32k", b, "raw")
		qemuScribble(t, mid)
		mid2 := filepath.Join(dir, "mid2.qcow2")
		qemuCreate(t, mid2, "extended_l2=on", mid, "qcow2")
		mustTool(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x77 1100k 3k", "-c", "write -z 5M 4k", mid2)
		img := filepath.Join(dir, "ov.qcow2")
		qemuCreate(t, img, "", mid2, "qcow2")
		return img
	}},
	{"compressed-backing", func(t *testing.T, dir string) string {
		c := compressedImage(t, dir, "comp.qcow2", "")
		img := filepath.Join(dir, "ov.qcow2")
		qemuCreate(t, img, "", c, "qcow2")
		return img
	}},
	{"compressed-top", func(t *testing.T, dir string) string {
		b := baseRaw(t, dir)
		return compressedImage(t, dir, "ov.qcow2", b)
	}},
	{"no-backing", func(t *testing.T, dir string) string {
		img := filepath.Join(dir, "ov.qcow2")
		qemuCreate(t, img, "", "", "")
		return img
	}},
	{"cluster-512", func(t *testing.T, dir string) string {
		b := baseRaw(t, dir)
		img := filepath.Join(dir, "ov.qcow2")
		qemuCreate(t, img, "cluster_size=512", b, "raw")
		return img
	}},
	{"cluster-2M", func(t *testing.T, dir string) string {
		b := baseRaw(t, dir)
		img := filepath.Join(dir, "ov.qcow2")
		qemuCreate(t, img, "cluster_size=2M", b, "raw")
		return img
	}},
	{"refcount-bits-1", func(t *testing.T, dir string) string {
		b := baseRaw(t, dir)
		img := filepath.Join(dir, "ov.qcow2")
		qemuCreate(t, img, "refcount_bits=1,cluster_size=4k", b, "raw")
		return img
	}},
	{"refcount-bits-64", func(t *testing.T, dir string) string {
		b := baseRaw(t, dir)
		img := filepath.Join(dir, "ov.qcow2")
		qemuCreate(t, img, "refcount_bits=64,cluster_size=1k", b, "raw")
		return img
	}},
	{"cowd-created-extended", func(t *testing.T, dir string) string {
		b := baseRaw(t, dir)
		img := filepath.Join(dir, "ov.qcow2")
		if _, err := Create(img, &CreateOptions{Size: imageSize, BackingFile: filepath.Base(b),
			BackingFormat: "raw", ExtendedL2: true, ClusterSize: 64 << 10}); err != nil {
			t.Fatal(err)
		}
		return img
	}},
}

// TestAgainstQemu builds images with QEMU's tools, checks that cowd reads
// what qemu-img reads, applies random writes, zeroes and discards through
// the Device (closing and reopening it on the way), and requires that
// qemu-img check finds the result clean and qemu-img compare finds the
// expected content.
func TestAgainstQemu(t *testing.T) {
	for _, v := range chainVariants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			img := v.build(t, dir)
			want := qemuRead(t, img)
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			m := cowdtest.NewModel(want)
			d := openTest(t, img, nil)
			requireSame(t, "initial content read by cowd", want, readAll(t, d))
			r := rand.New(rand.NewPCG(seed, 1))
			cs := d.g.clusterSize
			ops := 400
			if raceEnabled {
				ops = 160
			}
			for i := range ops {
				if i%100 == 99 {
					if err := d.Close(); err != nil {
						t.Fatal(err)
					}
					d = openTest(t, img, nil)
				}
				randomOp(t, r, d, m, cs)
			}
			got := readAll(t, d)
			if err := m.Check(got, 0); err != nil {
				t.Fatalf("after random ops: %v", err)
			}
			m.Settle(got, 0)
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if code, out := qemuCheck(t, img); code != 0 {
				t.Fatalf("qemu-img check exit %d:\n%s", code, out)
			}
			exp := filepath.Join(dir, "expected.raw")
			writeFile(t, exp, m.Bytes())
			mustTool(t, "qemu-img", "compare", "-U", "-f", "raw", "-F", "qcow2", exp, img)
		})
	}
}

// randomOp applies one random request to the device and the model.
func randomOp(t *testing.T, r *rand.Rand, d *Device, m *cowdtest.Model, cs int64) {
	t.Helper()
	size := d.Size()
	off := r.Int64N(size)
	if r.IntN(3) == 0 {
		off = off / cs * cs // cluster aligned
	}
	maxLen := int64(512 << 10)
	if raceEnabled {
		maxLen = 128 << 10
	}
	n := 1 + r.Int64N(min(size-off, 3*cs+cs/2, maxLen))
	switch op := r.IntN(20); {
	case op < 13:
		p := randomBytes(int(n), r.Uint64())
		if _, err := d.WriteAt(p, off); err != nil {
			t.Fatalf("write %d at %d: %v", n, off, err)
		}
		m.Write(p, off)
	case op < 16:
		noHole := r.IntN(2) == 0
		if err := d.WriteZeroes(off, n, noHole, false); err != nil {
			t.Fatalf("zero %d at %d: %v", n, off, err)
		}
		m.Zero(off, n)
	case op < 18:
		if err := d.Trim(off, n); err != nil {
			t.Fatalf("trim %d at %d: %v", n, off, err)
		}
		m.Trim(off, n)
		got := make([]byte, n)
		if _, err := d.ReadAt(got, off); err != nil {
			t.Fatal(err)
		}
		m.Settle(got, off)
	default:
		if err := d.Sync(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestQemuWritesCowdReads writes with qemu-io into an image, then reads it
// through the Device.
func TestQemuWritesCowdReads(t *testing.T) {
	for _, opts := range []string{"", "compat=0.10", "extended_l2=on,cluster_size=64k"} {
		t.Run(strings.NewReplacer("=", "-", ",", "_").Replace(opts+"x"), func(t *testing.T) {
			dir := t.TempDir()
			b := baseRaw(t, dir)
			img := filepath.Join(dir, "ov.qcow2")
			qemuCreate(t, img, opts, b, "raw")
			qemuScribble(t, img)
			mustTool(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x99 7000k 1k", "-c", "write -z -u 6M 128k", img)
			want := qemuRead(t, img)
			d := openTest(t, img, nil)
			defer d.Close()
			requireSame(t, "content read by cowd", want, readAll(t, d))
		})
	}
}
