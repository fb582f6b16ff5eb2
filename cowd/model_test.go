package cowd

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestModel replays random operation sequences against a Device and a
// byte slice that is trivially correct, reopening the image now and then
// (cleanly, or after a simulated crash right after a Sync), and compares.
func TestModel(t *testing.T) {
	for _, bs := range []int{4 * kib, 64 * kib} {
		for seed := range uint64(3) {
			t.Run(fmt.Sprintf("bs=%dK/seed=%d", bs/kib, seed), func(t *testing.T) {
				runModel(t, bs, seed, 600)
			})
		}
	}
}

func runModel(t *testing.T, bs int, seed uint64, steps int) {
	const size = 777*kib + 123
	img, base := newImage(t, size, bs)
	r := rand.New(rand.NewPCG(seed, uint64(bs)))
	d := openDevice(t, img, &Options{Sync: seed == 2})
	defer func() { d.Close() }()
	want := bytes.Clone(base)
	buf := make([]byte, 300*kib)
	randRange := func() (int64, int64) {
		off := r.Int64N(size)
		n := 1 + r.Int64N(min(size-off, 256*kib))
		if r.IntN(3) == 0 { // aligned requests hit the whole-block paths
			off = off / int64(bs) * int64(bs)
			n = min(size-off, int64(bs)*(1+r.Int64N(4)))
		}
		return off, n
	}
	for step := range steps {
		off, n := randRange()
		var err error
		switch k := r.IntN(20); {
		case k < 8:
			p := buf[:n]
			for i := range p {
				p[i] = byte(step) ^ byte(i>>9)
			}
			_, err = d.WriteAt(p, off)
			copy(want[off:], p)
		case k < 12:
			got := buf[:n]
			if _, err = d.ReadAt(got, off); err == nil && !bytes.Equal(got, want[off:off+n]) {
				t.Fatalf("step %d: read %d bytes at %d differs from the model", step, n, off)
			}
		case k < 14:
			err = d.Trim(off, n)
			first, last := d.wholeBlocks(off, n)
			clear(want[min(first*int64(bs), size):min(last*int64(bs), size)])
		case k < 17:
			err = d.WriteZeroes(off, n, r.IntN(4) == 0, false)
			clear(want[off : off+n])
		case k < 19:
			err = d.Sync()
		default:
			if r.IntN(2) == 0 {
				err = d.Close()
			} else if err = d.Sync(); err == nil {
				d.abandon() // crash right after a completed flush
			}
			d = openDevice(t, img, nil)
		}
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
	}
	if !bytes.Equal(readAll(t, d), want) {
		t.Fatal("final content differs from the model")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	checkClean(t, img)
	d = openDevice(t, img, nil)
}
