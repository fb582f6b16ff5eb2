package nbd_test

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/xentmem/xentmem/cowd/nbd"
	"github.com/xentmem/xentmem/internal/cowdtest"
)

// TestPipelinedMixedSizes keeps many requests of mixed sizes in flight on
// one connection: small and large WRITEs (large payloads are read past the
// connection's buffer, and so is the header after them), READs whose data
// goes out in batched replies, and requests that fail. Each goroutine owns
// a region and checks what it reads against its own model of it.
func TestPipelinedMixedSizes(t *testing.T) {
	const (
		workers = 8
		region  = 4 << 20
		size    = workers * region
	)
	for _, structured := range []bool{false, true} {
		name := "simple"
		if structured {
			name = "structured"
		}
		t.Run(name, func(t *testing.T) {
			dev := newMemDevice(size)
			sock := startServer(t, nbd.Export{Name: "d", Device: dev, Size: size})
			c := dial(t, sock, &cowdtest.DialOptions{Structured: structured})
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					r := rand.New(rand.NewPCG(uint64(w), 7))
					base := int64(w) * region
					model := make([]byte, region)
					lengths := []int{1, 512, 4096, 16<<10 - 1, 16 << 10, 64 << 10, 1 << 20}
					for i := range 40 {
						n := lengths[r.IntN(len(lengths))]
						off := r.IntN(region - n)
						switch i % 4 {
						case 0, 1:
							p := bytes.Repeat([]byte{byte(w*40 + i + 1)}, n)
							if err := c.Write(p, base+int64(off), false); err != nil {
								t.Errorf("worker %d: write %d at %d: %v", w, n, off, err)
								return
							}
							copy(model[off:], p)
						case 2:
							got := make([]byte, n)
							if err := c.Read(got, base+int64(off)); err != nil {
								t.Errorf("worker %d: read %d at %d: %v", w, n, off, err)
								return
							}
							if !bytes.Equal(got, model[off:off+n]) {
								t.Errorf("worker %d: read %d at %d differs from what was written", w, n, off)
								return
							}
						case 3:
							// Past the end: the payload of a refused write
							// must still be consumed, and a refused read
							// answered, without losing step.
							if err := c.Write(make([]byte, n), size-int64(n)/2, false); cowdtest.ErrnoOf(err) != uint32(nbd.ENOSPC) {
								t.Errorf("worker %d: write past the end: %v, want ENOSPC", w, err)
							}
							if err := c.Read(make([]byte, n), size); err == nil && n > 0 {
								t.Errorf("worker %d: read past the end succeeded", w)
							}
						}
					}
				})
			}
			wg.Wait()
		})
	}
}
