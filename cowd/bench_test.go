package cowd

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

const benchSize = 256 << 20

// newBenchImage creates a sparse base (reads are page-cache speed) and an
// image with 64 KiB blocks.
func newBenchImage(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	base := filepath.Join(dir, "base.img")
	f, err := os.Create(base)
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Truncate(benchSize); err != nil {
		b.Fatal(err)
	}
	f.Close()
	img := filepath.Join(dir, "disk.dscow")
	if _, err := Create(img, base, nil); err != nil {
		b.Fatal(err)
	}
	return img
}

// randOffsets returns 4 KiB-aligned random offsets within the first n bytes.
func randOffsets(n int64) []int64 {
	r := rand.New(rand.NewPCG(1, 2))
	offs := make([]int64, 4096)
	for i := range offs {
		offs[i] = r.Int64N(n/4096) * 4096
	}
	return offs
}

func BenchmarkRead4KBase(b *testing.B) {
	d := openDevice(b, newBenchImage(b), nil)
	defer d.Close()
	benchRead(b, d)
}

func BenchmarkRead4KMapped(b *testing.B) {
	d := openDevice(b, newBenchImage(b), nil)
	defer d.Close()
	fill(b, d, 32<<20)
	benchRead(b, d)
}

func benchRead(b *testing.B, d *Device) {
	offs := randOffsets(32 << 20)
	p := make([]byte, 4096)
	b.SetBytes(4096)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := d.ReadAt(p, offs[i%len(offs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// fill maps the first n bytes with whole-block writes.
func fill(b *testing.B, d *Device, n int64) {
	b.Helper()
	p := make([]byte, d.bs)
	for off := int64(0); off < n; off += d.bs {
		if _, err := d.WriteAt(p, off); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWrite4KRewrite(b *testing.B) {
	d := openDevice(b, newBenchImage(b), nil)
	defer d.Close()
	fill(b, d, 32<<20)
	offs := randOffsets(32 << 20)
	p := make([]byte, 4096)
	b.SetBytes(4096)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := d.WriteAt(p, offs[i%len(offs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkWrite4KFirst measures the expensive case: a 4 KiB write into a
// block still in the base, which copies the whole 64 KiB block.
func BenchmarkWrite4KFirst(b *testing.B) {
	benchFirst(b, 4096)
}

// BenchmarkWrite64KFirst writes whole blocks: no copy from the base.
func BenchmarkWrite64KFirst(b *testing.B) {
	benchFirst(b, 64<<10)
}

func benchFirst(b *testing.B, n int) {
	img := newBenchImage(b)
	d := openDevice(b, img, nil)
	defer func() { d.Close() }()
	p := make([]byte, n)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	blocks := d.hdr.Blocks
	var blk int64
	for b.Loop() {
		if blk == blocks {
			b.StopTimer()
			d.Close()
			if _, err := Init(img, nil); err != nil {
				b.Fatal(err)
			}
			d = openDevice(b, img, nil)
			blk = 0
			b.StartTimer()
		}
		if _, err := d.WriteAt(p, blk*d.bs); err != nil {
			b.Fatal(err)
		}
		blk++
	}
}

// TestSteadyStateAllocations pins zero allocations on the read and rewrite
// paths.
func TestSteadyStateAllocations(t *testing.T) {
	img, _ := newImage(t, 1024*kib, 64*kib)
	d := openDevice(t, img, nil)
	defer d.Close()
	p := make([]byte, 4096)
	if _, err := d.WriteAt(p, 64*kib); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		fn   func()
	}{
		{"read base", func() { d.ReadAt(p, 512*kib) }},
		{"read mapped", func() { d.ReadAt(p, 64*kib) }},
		{"rewrite", func() { d.WriteAt(p, 64*kib+4096) }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, tt.fn); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", tt.name, n)
		}
	}
}
