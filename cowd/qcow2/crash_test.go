package qcow2

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// pendingOp is a write or zero not yet covered by a completed flush.
type pendingOp struct {
	id     int
	off, n int64
	zero   bool
}

func (o pendingOp) value(i int64) byte {
	if o.zero {
		return 0
	}
	return byte(o.id)*31 ^ byte(i>>2) ^ 0xa5
}

// TestCrashPoints stops a flush before each of its steps in turn (the
// file then holds exactly what a process killed at that moment leaves) and
// requires qemu-img check to find at most leaks and a reopened Device to
// return every write covered by a completed flush.
func TestCrashPoints(t *testing.T) {
	for _, opts := range []string{
		"cluster_size=512,refcount_bits=64", // refcount blocks and table growth
		"cluster_size=4k",
		"extended_l2=on,cluster_size=16k",
		"compat=0.10,cluster_size=4k",
		"lazy_refcounts=on,cluster_size=4k",
	} {
		t.Run(opts, func(t *testing.T) {
			t.Parallel()
			// Every step of the first flushes, then a sample: with small
			// clusters each refcount block write is a step of its own.
			step := 7
			if testing.Short() || raceEnabled {
				step = 23
			}
			for k := 1; k < 500; k++ {
				if !crashAt(t, opts, k) {
					return // the run finished before reaching crash point k
				}
				if k >= 30 {
					k += step - 1
				}
			}
			t.Fatal("too many crash points")
		})
	}
}

// crashAt runs a fixed workload and crashes at the k-th flush step; it
// returns false if the workload ended first.
func crashAt(t *testing.T, opts string, k int) bool {
	t.Helper()
	const size = 2 * mib
	dir := t.TempDir()
	base := randomBytes(size, 99)
	writeFile(t, filepath.Join(dir, "base.raw"), base)
	img := filepath.Join(dir, "ov.qcow2")
	mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", opts, "-b", "base.raw", "-F", "raw", img, fmt.Sprint(size))
	d := openTest(t, img, nil)
	r := rand.New(rand.NewPCG(42, 3)) // the same workload for every k
	durable := bytes.Clone(base)
	cur := bytes.Clone(base)
	var pending []pendingOp
	id := 0
	calls := 0
	crashed := false
	var err error
	perRound := 24
	if raceEnabled {
		perRound = 10 // the flush logic under test is single-threaded: keep the race run short
	}
	for round := 0; round < 4 && !crashed; round++ {
		for range perRound {
			id++
			o := pendingOp{id: id, off: r.Int64N(size), zero: r.IntN(5) == 0}
			o.n = 1 + r.Int64N(min(size-o.off, 40<<10))
			if round == 3 && r.IntN(2) == 0 {
				// Trim what earlier rounds allocated: frees after the flush.
				if err := d.Trim(o.off, o.n); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, o.n)
				if _, err := d.ReadAt(got, o.off); err != nil {
					t.Fatal(err)
				}
				copy(cur[o.off:], got)
				o.zero = true // a discarded range reads as zeroes (v3) or keeps its data (v2)
				pending = append(pending, o, pendingOp{id: -1, off: o.off, n: o.n})
				continue
			}
			pending = append(pending, o)
			if o.zero {
				err = d.WriteZeroes(o.off, o.n, r.IntN(2) == 0, false)
			} else {
				p := make([]byte, o.n)
				for i := range p {
					p[i] = o.value(o.off + int64(i))
				}
				_, err = d.WriteAt(p, o.off)
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := o.off; i < o.off+o.n; i++ {
				cur[i] = o.value(i)
			}
		}
		if round == 0 {
			d.crashHook = func() bool { calls++; return calls == k }
		}
		if err := d.Sync(); err != nil {
			crashed = true
			break
		}
		copy(durable, cur)
		pending = pending[:0]
	}
	if !crashed {
		// Close flushes too (and writes the refcounts that the frees of
		// the last flush changed): crash points continue there.
		if err := d.Close(); err == nil {
			return false
		} else if !errors.Is(err, errCrashed) {
			t.Fatal(err)
		}
	} else {
		// The process "dies": nothing more reaches the file.
		d.closed.Store(true)
		d.closeFiles()
	}
	lazy := bytes.Contains([]byte(opts), []byte("lazy"))
	if lazy {
		cp := img + ".copy"
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, cp, b)
		if code, out := qemuCheck(t, cp, "-r", "all"); code != 0 {
			t.Fatalf("crash point %d: qemu-img check -r all: exit %d\n%s", k, code, out)
		}
	} else if code, out := qemuCheck(t, img); code != 0 && code != 3 {
		t.Fatalf("crash point %d: qemu-img check exit %d\n%s", k, code, out)
	}
	d = openTest(t, img, nil)
	got := readAll(t, d)
	if testing.Verbose() && k%10 == 0 {
		t.Logf("crash point %d", k)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i] == durable[i] {
			continue
		}
		ok := false
		for _, o := range pending {
			if int64(i) >= o.off && int64(i) < o.off+o.n && (o.id == -1 || o.value(int64(i)) == got[i]) {
				ok = true
				break
			}
		}
		if !ok {
			t.Fatalf("crash point %d: byte %d is %#02x; the last flush left %#02x and no later write explains it", k, i, got[i], durable[i])
		}
	}
	if code, out := qemuCheck(t, img); code != 0 && code != 3 {
		t.Fatalf("crash point %d: qemu-img check after reopen: exit %d\n%s", k, code, out)
	}
	return true
}
