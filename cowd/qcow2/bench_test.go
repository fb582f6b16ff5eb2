package qcow2

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

const benchSize = 256 << 20

// newBenchImage creates a sparse raw base (reads are page-cache speed) and
// a qcow2 overlay over it with Create.
func newBenchImage(tb testing.TB, opts *CreateOptions) string {
	tb.Helper()
	dir := tb.TempDir()
	base := filepath.Join(dir, "base.raw")
	f, err := os.Create(base)
	if err != nil {
		tb.Fatal(err)
	}
	if err := f.Truncate(benchSize); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	img := filepath.Join(dir, "ov.qcow2")
	o := CreateOptions{}
	if opts != nil {
		o = *opts
	}
	o.BackingFile, o.BackingFormat = "base.raw", "raw"
	if _, err := Create(img, &o); err != nil {
		tb.Fatal(err)
	}
	return img
}

func randOffsets(n, align int64) []int64 {
	r := rand.New(rand.NewPCG(1, 2))
	offs := make([]int64, 4096)
	for i := range offs {
		offs[i] = r.Int64N(n/align) * align
	}
	return offs
}

// fillClusters allocates the first n bytes with whole-cluster writes.
func fillClusters(tb testing.TB, d *Device, n int64) {
	tb.Helper()
	p := make([]byte, d.ClusterSize())
	for off := int64(0); off < n; off += int64(len(p)) {
		if _, err := d.WriteAt(p, off); err != nil {
			tb.Fatal(err)
		}
	}
	if err := d.Sync(); err != nil {
		tb.Fatal(err)
	}
}

func BenchmarkRead4KBacking(b *testing.B) {
	d := openTest(b, newBenchImage(b, nil), nil)
	defer d.Close()
	benchIO(b, d, false, randOffsets(32<<20, 4096))
}

func BenchmarkRead4KAllocated(b *testing.B) {
	d := openTest(b, newBenchImage(b, nil), nil)
	defer d.Close()
	fillClusters(b, d, 32<<20)
	benchIO(b, d, false, randOffsets(32<<20, 4096))
}

func BenchmarkRewrite4K(b *testing.B) {
	d := openTest(b, newBenchImage(b, nil), nil)
	defer d.Close()
	fillClusters(b, d, 32<<20)
	benchIO(b, d, true, randOffsets(32<<20, 4096))
}

// BenchmarkFirstWrite writes 4 KiB into clusters never written: with 64
// KiB clusters each write copies 60 KiB from the backing file; with
// extended L2 (4 KiB subclusters at 128 KiB clusters) it copies nothing.
func BenchmarkFirstWrite(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts *CreateOptions
		size int
	}{
		{"4K-cluster64K", nil, 4096},
		{"4K-extendedL2-128K", &CreateOptions{ExtendedL2: true, ClusterSize: 128 << 10}, 4096},
		{"64K-cluster64K", nil, 64 << 10},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d := openTest(b, newBenchImage(b, bc.opts), nil)
			defer d.Close()
			p := make([]byte, bc.size)
			step := int64(d.ClusterSize())
			b.SetBytes(int64(bc.size))
			b.ReportAllocs()
			off := int64(0)
			for b.Loop() {
				if _, err := d.WriteAt(p, off); err != nil {
					b.Fatal(err)
				}
				if off += step; off+int64(bc.size) > benchSize {
					b.StopTimer()
					d.Close()
					d = openTest(b, newBenchImage(b, bc.opts), nil)
					off = 0
					b.StartTimer()
				}
			}
		})
	}
}

func benchIO(b *testing.B, d *Device, write bool, offs []int64) {
	p := make([]byte, 4096)
	b.SetBytes(4096)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var err error
		if write {
			_, err = d.WriteAt(p, offs[i%len(offs)])
		} else {
			_, err = d.ReadAt(p, offs[i%len(offs)])
		}
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// TestNoAllocs pins the hot paths at zero allocations per request: reads
// of allocated clusters and of the backing file, rewrites in place, and
// first writes of whole clusters once the L2 table exists.
func TestNoAllocs(t *testing.T) {
	d := openTest(t, newBenchImage(t, nil), nil)
	defer d.Close()
	fillClusters(t, d, 4<<20)
	p := make([]byte, 4096)
	whole := make([]byte, d.ClusterSize())
	next := int64(8 << 20)
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"read allocated", func() { d.ReadAt(p, 1<<20+512) }},
		{"read backing", func() { d.ReadAt(p, 100<<20) }},
		{"rewrite", func() { d.WriteAt(p, 2<<20+4096) }},
		{"first whole-cluster write", func() { d.WriteAt(whole, next); next += int64(len(whole)) }},
		{"first partial write", func() { d.WriteAt(p, next+4096); next += int64(len(whole)) }},
	} {
		tc.fn() // warm up: L2 table, buffer pools
		if n := testing.AllocsPerRun(100, tc.fn); n > 0 {
			t.Errorf("%s: %.1f allocations per request", tc.name, n)
		}
	}
}
