package qcow2

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestConcurrentIO runs writers, zeroers, trimmers, readers and syncs at
// once on an image whose L2 cache holds only a few tables, so tables are
// evicted, reloaded and flushed under pressure while clusters are
// allocated and freed. Each goroutine owns every nth cluster, so the
// expected content is exact; at the end qemu-img must find the image clean
// and read the same content.
func TestConcurrentIO(t *testing.T) {
	for _, opts := range []string{"cluster_size=4k", "extended_l2=on,cluster_size=16k", "compat=0.10,cluster_size=4k"} {
		t.Run(opts, func(t *testing.T) {
			const size = 24 * mib
			const workers = 6
			dir := t.TempDir()
			base := randomBytes(size, 5)
			writeFile(t, filepath.Join(dir, "base.raw"), base)
			img := filepath.Join(dir, "ov.qcow2")
			mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", opts, "-b", "base.raw", "-F", "raw", img, fmt.Sprint(size))
			d := openTest(t, img, &Options{CacheSize: 16 << 10})
			cs := d.g.clusterSize
			clusters := int64(size) / cs
			want := bytes.Clone(base)
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			ops := 600
			if raceEnabled {
				ops = 300
			}
			var wg sync.WaitGroup
			errs := make(chan error, workers+1)
			stop := make(chan struct{})
			for w := range workers {
				wg.Go(func() {
					r := rand.New(rand.NewPCG(seed, uint64(w)))
					for range ops {
						c := r.Int64N(clusters/workers)*workers + int64(w)
						in := r.Int64N(cs)
						n := 1 + r.Int64N(cs-in)
						off := c*cs + in
						var err error
						switch r.IntN(10) {
						case 0:
							err = d.WriteZeroes(off, n, r.IntN(2) == 0, false)
							clear(want[off : off+n])
						case 1:
							// Whole-cluster discard; v2 with a backing file keeps the data.
							err = d.Trim(c*cs, cs)
							got := make([]byte, cs)
							if err == nil {
								_, err = d.ReadAt(got, c*cs)
							}
							copy(want[c*cs:], got)
						case 2, 3:
							got := make([]byte, n)
							if _, err = d.ReadAt(got, off); err == nil && !bytes.Equal(got, want[off:off+n]) {
								err = fmt.Errorf("read %d at %d: content differs", n, off)
							}
						default:
							p := randomBytes(int(n), r.Uint64())
							_, err = d.WriteAt(p, off)
							copy(want[off:], p)
						}
						if err != nil {
							errs <- err
							return
						}
					}
				})
			}
			var syncs sync.WaitGroup
			syncs.Go(func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(time.Millisecond):
					}
					if err := d.Sync(); err != nil {
						errs <- err
						return
					}
				}
			})
			wg.Wait()
			close(stop)
			syncs.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			requireSame(t, "content after concurrent I/O", want, readAll(t, d))
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if code, out := qemuCheck(t, img); code != 0 {
				t.Fatalf("qemu-img check exit %d:\n%s", code, out)
			}
			requireSame(t, "content read by qemu-img", want, qemuRead(t, img))
		})
	}
}
