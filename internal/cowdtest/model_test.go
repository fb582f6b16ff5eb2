package cowdtest_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/xentmem/xentmem/cowd"
	"github.com/xentmem/xentmem/internal/cowdtest"
)

// TestModelOverNBD replays random operation sequences (write, read, trim,
// zero, flush) through the NBD server against the in-memory model. Two
// connections run at once, each in its own half of the disk, so the
// server's concurrency is exercised while every expected byte stays exact.
func TestModelOverNBD(t *testing.T) {
	for _, tc := range []struct {
		bs   int
		sync bool
	}{{4 << 10, false}, {64 << 10, false}, {64 << 10, true}} {
		t.Run(fmt.Sprintf("bs=%dK/sync=%v", tc.bs>>10, tc.sync), func(t *testing.T) {
			const size = 3*mib + 12345
			s := serve(t, size, tc.bs, &cowd.Options{Sync: tc.sync})
			m := cowdtest.NewModel(s.base)
			half := int64(size / 2)
			var wg sync.WaitGroup
			for w := range 2 {
				c, err := cowdtest.Dial("unix", s.sock, &cowdtest.DialOptions{Export: "disk", Structured: w == 0})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				lo, hi := int64(w)*half, min(int64(w+1)*half, size)
				wg.Go(func() { runOps(t, c, m, lo, hi, uint64(w)+uint64(tc.bs), 250) })
			}
			wg.Wait()
			if err := m.Check(s.contents(t), 0); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// runOps runs steps random operations inside [lo, hi). The model is shared
// but each worker touches only its own range, so no lock is needed.
func runOps(t *testing.T, c *cowdtest.Client, m *cowdtest.Model, lo, hi int64, seed uint64, steps int) {
	r := rand.New(rand.NewPCG(seed, 42))
	buf := make([]byte, 128<<10)
	for step := range steps {
		off := lo + r.Int64N(hi-lo)
		n := 1 + r.Int64N(min(hi-off, int64(len(buf))))
		var err error
		switch k := r.IntN(10); {
		case k < 4:
			p := buf[:n]
			for i := range p {
				p[i] = byte(step*7) ^ byte(i)
			}
			if err = c.Write(p, off, r.IntN(8) == 0); err == nil {
				m.Write(p, off)
			}
		case k < 7:
			p := buf[:n]
			if err = c.Read(p, off); err == nil {
				if cerr := m.Check(p, off); cerr != nil {
					t.Errorf("step %d: read %d at %d: %v", step, n, off, cerr)
					return
				}
				m.Settle(p, off)
			}
		case k == 7:
			if err = c.Trim(off, n); err == nil {
				m.Trim(off, n)
			}
		case k == 8:
			flags := []uint16{0, cowdtest.FlagNoHole, cowdtest.FlagFastZero}[r.IntN(3)]
			err = c.WriteZeroes(off, n, flags)
			if err == nil {
				m.Zero(off, n)
			} else if flags == cowdtest.FlagFastZero && cowdtest.ErrnoOf(err) == 95 {
				err = nil // refused fast zero: nothing changed
			}
		default:
			err = c.Flush()
		}
		if err != nil {
			t.Errorf("step %d: %v", step, err)
			return
		}
	}
}
