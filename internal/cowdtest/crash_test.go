package cowdtest_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/xentmem/xentmem/internal/cowdtest"
)

// crashOp is a write or zero sent after the last completed flush; after a
// crash its bytes may or may not have landed.
type crashOp struct {
	id     int
	off, n int64
	zero   bool
}

// value is the byte the op writes at device offset i.
func (o crashOp) value(i int64) byte {
	if o.zero {
		return 0
	}
	return byte(o.id) ^ byte(i>>3) ^ 0x5a
}

// TestCrashConsistency kills cowd with SIGKILL at random moments while a
// client writes, restarts it with -r, and checks that every write
// acknowledged before the last completed FLUSH (in -s mode: every
// acknowledged write) reads back exactly, that nothing else changed, and
// that "cowd-img check" finds the image clean.
func TestCrashConsistency(t *testing.T) {
	cowdBin, imgBin := buildBinaries(t)
	iterations := 50
	if testing.Short() {
		iterations = 10
	}
	for _, syncMode := range []bool{false, true} {
		name := map[bool]string{false: "flush", true: "sync"}[syncMode]
		t.Run(name, func(t *testing.T) { crashLoop(t, cowdBin, imgBin, syncMode, iterations) })
	}
}

func crashLoop(t *testing.T, cowdBin, imgBin string, syncMode bool, iterations int) {
	const size = 4 * mib
	dir := t.TempDir()
	base := randomBytes(size, 1234)
	basePath, img, sock := filepath.Join(dir, "base.img"), filepath.Join(dir, "disk.dscow"), filepath.Join(dir, "s.sock")
	if err := os.WriteFile(basePath, base, 0o400); err != nil {
		t.Fatal(err)
	}
	if code, out := runImg(t, imgBin, "create", img, basePath, "16"); code != 0 {
		t.Fatalf("create: %s", out)
	}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	durable := bytes.Clone(base) // content as of the last completed flush
	var pending []crashOp        // ops sent since then
	opID := 0
	args := []string{"-n", "-r", "--listen", "unix:" + sock}
	if syncMode {
		args = append(args, "-s")
	}
	args = append(args, "disk", img)
	for iter := 0; iter <= iterations; iter++ {
		var stderr bytes.Buffer
		cmd := exec.Command(cowdBin, args...)
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() }) // if the test fails early
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		waitSocket(t, sock, exited, &stderr)
		c, err := cowdtest.Dial("unix", sock, &cowdtest.DialOptions{Export: "disk", Structured: iter%2 == 0})
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, size)
		for off := 0; off < size; off += mib {
			if err := c.Read(got[off:off+mib], int64(off)); err != nil {
				t.Fatal(err)
			}
		}
		verifyAfterCrash(t, iter, got, durable, pending)
		durable, pending = got, nil
		if code, out := runImg(t, imgBin, "check", "-U", img); code != 0 {
			t.Fatalf("iteration %d: cowd-img check exit %d:\n%s", iter, code, out)
		}
		if iter == iterations {
			c.Close()
			cmd.Process.Signal(syscall.SIGTERM)
			<-exited
			if cmd.ProcessState.ExitCode() != 0 {
				t.Fatalf("cowd exit %d after SIGTERM:\n%s", cmd.ProcessState.ExitCode(), &stderr)
			}
			break
		}
		// Write until SIGKILL lands at a random moment.
		timer := time.AfterFunc(time.Duration(5+r.IntN(60))*time.Millisecond, func() { cmd.Process.Kill() })
		cur := bytes.Clone(durable)
		for {
			opID++
			o := crashOp{id: opID, off: r.Int64N(size), zero: r.IntN(6) == 0}
			o.n = 1 + r.Int64N(min(size-o.off, 96<<10))
			pending = append(pending, o)
			if o.zero {
				err = c.WriteZeroes(o.off, o.n, uint16(r.IntN(2))*cowdtest.FlagNoHole)
			} else {
				p := make([]byte, o.n)
				for i := range p {
					p[i] = o.value(o.off + int64(i))
				}
				err = c.Write(p, o.off, false)
			}
			if err != nil {
				break
			}
			for i := o.off; i < o.off+o.n; i++ {
				cur[i] = o.value(i)
			}
			if syncMode {
				copy(durable, cur) // a completed write is durable in -s mode
				pending = pending[:0]
			} else if r.IntN(4) == 0 {
				if err = c.Flush(); err != nil {
					break
				}
				copy(durable, cur)
				pending = pending[:0]
			}
		}
		timer.Stop()
		c.Abort()
		<-exited
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("iteration %d: cowd ended by %v, not SIGKILL:\n%s", iter, cmd.ProcessState, &stderr)
		}
	}
	if code, out := runImg(t, imgBin, "check", img); code != 0 {
		t.Fatalf("final check exit %d:\n%s", code, out)
	}
}

// verifyAfterCrash checks every byte: it must hold the durable value, or
// the value of an op sent after the last completed flush that covers it.
func verifyAfterCrash(t *testing.T, iter int, got, durable []byte, pending []crashOp) {
	t.Helper()
	if bytes.Equal(got, durable) {
		return
	}
	for i := range got {
		if got[i] == durable[i] {
			continue
		}
		ok := false
		for _, o := range pending {
			if int64(i) >= o.off && int64(i) < o.off+o.n && o.value(int64(i)) == got[i] {
				ok = true
				break
			}
		}
		if !ok {
			t.Fatalf("iteration %d: byte %d is %#02x; the last flush left %#02x and no later write explains it",
				iter, i, got[i], durable[i])
		}
	}
}
