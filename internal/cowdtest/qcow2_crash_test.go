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

// qcow2CrashVariant is one image flavour of the qcow2 crash loop.
type qcow2CrashVariant struct {
	name   string
	create func(t *testing.T, imgBin, dir, basePath, img string)
	sync   bool // cowd -s
	lazy   bool // lazy refcounts: stale refcounts after a kill are expected
}

func qemuCreateOverlay(opts string) func(t *testing.T, imgBin, dir, basePath, img string) {
	return func(t *testing.T, _, _, basePath, img string) {
		args := []string{"create", "-q", "-f", "qcow2", "-b", filepath.Base(basePath), "-F", "raw"}
		if opts != "" {
			args = append(args, "-o", opts)
		}
		runTool(t, "qemu-img", append(args, img)...)
	}
}

func cowdImgCreateOverlay(opts string) func(t *testing.T, imgBin, dir, basePath, img string) {
	return func(t *testing.T, imgBin, _, basePath, img string) {
		args := []string{"create", "-f", "qcow2", "-b", filepath.Base(basePath), "-F", "raw"}
		if opts != "" {
			args = append(args, "-o", opts)
		}
		if code, out := runImg(t, imgBin, append(args, img)...); code != 0 {
			t.Fatalf("cowd-img create: %s", out)
		}
	}
}

// TestQcow2CrashConsistency is the crash loop of crash_test.go on qcow2
// overlays: cowd -p qcow2 is killed with SIGKILL at random moments while a
// client writes, and after every kill qemu-img check must exit 0 or 3
// (leaked clusters only) and cowd-img check must agree; cowd restarted with
// -r must return every write acknowledged before the last completed FLUSH
// (in -s mode: every acknowledged write). With lazy refcounts a killed
// image has stale refcounts by design: QEMU's own repair (qemu-img check -r
// all, on a copy) must then find nothing but refcount errors, and cowd
// rebuilds the refcounts when it restarts.
func TestQcow2CrashConsistency(t *testing.T) {
	cowdBin, imgBin := buildBinaries(t)
	cowdtest.RequireTool(t, "qemu-img")
	iterations := 30
	if testing.Short() {
		iterations = 8
	}
	variants := []qcow2CrashVariant{
		{name: "v3", create: cowdImgCreateOverlay("cluster_size=16k")},
		{name: "v3-sync", create: qemuCreateOverlay("cluster_size=16k"), sync: true},
		{name: "extended-l2", create: cowdImgCreateOverlay("extended_l2=on,cluster_size=64k")},
		{name: "v2", create: qemuCreateOverlay("compat=0.10,cluster_size=4k")},
		{name: "small-clusters", create: qemuCreateOverlay("cluster_size=512,refcount_bits=64")},
		{name: "lazy-refcounts", create: qemuCreateOverlay("lazy_refcounts=on,cluster_size=16k"), lazy: true},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) { qcow2CrashLoop(t, cowdBin, imgBin, v, iterations) })
	}
}

func qcow2CrashLoop(t *testing.T, cowdBin, imgBin string, v qcow2CrashVariant, iterations int) {
	const size = 4 * mib
	dir := t.TempDir()
	base := randomBytes(size, 4321)
	basePath, img, sock := filepath.Join(dir, "base.raw"), filepath.Join(dir, "ov.qcow2"), filepath.Join(dir, "s.sock")
	if err := os.WriteFile(basePath, base, 0o400); err != nil {
		t.Fatal(err)
	}
	v.create(t, imgBin, dir, basePath, img)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 6))
	durable := bytes.Clone(base)
	var pending []crashOp
	opID := 0
	args := []string{"-n", "-r", "-p", "qcow2", "--listen", "unix:" + sock}
	if v.sync {
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
		t.Cleanup(func() { cmd.Process.Kill() })
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
		if iter == iterations {
			c.Close()
			cmd.Process.Signal(syscall.SIGTERM)
			<-exited
			if cmd.ProcessState.ExitCode() != 0 {
				t.Fatalf("cowd exit %d after SIGTERM:\n%s", cmd.ProcessState.ExitCode(), &stderr)
			}
			break
		}
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
			if v.sync {
				copy(durable, cur)
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
		checkAfterKill(t, iter, imgBin, img, v.lazy)
	}
	// Leaks from the kills stay until repaired, as with QEMU.
	if out, code := qemuImgCheck(t, img); code != 0 && code != 3 {
		t.Fatalf("final qemu-img check exit %d:\n%s", code, out)
	}
	if code, out := runImg(t, imgBin, "check", "-r", img); code != 0 {
		t.Fatalf("cowd-img check -r exit %d:\n%s", code, out)
	}
	if out, code := qemuImgCheck(t, img); code != 0 {
		t.Fatalf("qemu-img check after cowd-img check -r: exit %d:\n%s", code, out)
	}
	if d := firstDiff(durable, qcow2Content(t, img)); d != "" {
		t.Fatalf("content after the repair: %s", d)
	}
}

// checkAfterKill runs qemu-img check and cowd-img check on a killed image.
func checkAfterKill(t *testing.T, iter int, imgBin, img string, lazy bool) {
	t.Helper()
	out, code := qemuImgCheck(t, img)
	ours, ourOut := runImg(t, imgBin, "check", img)
	if lazy {
		// Stale refcounts are expected; QEMU's repair must fix them all.
		cp := img + ".copy"
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(cp)
		if rout, rcode := qemuImgCheck(t, cp, "-r", "all"); rcode != 0 {
			t.Fatalf("iteration %d: qemu-img check -r all on a copy: exit %d\n%s", iter, rcode, rout)
		}
		return
	}
	if code != 0 && code != 3 {
		t.Fatalf("iteration %d: qemu-img check exit %d after SIGKILL:\n%s", iter, code, out)
	}
	if ours != code {
		t.Fatalf("iteration %d: cowd-img check exit %d, qemu-img check exit %d:\n%s\n%s", iter, ours, code, ourOut, out)
	}
}

func qemuImgCheck(t *testing.T, img string, extra ...string) (string, int) {
	t.Helper()
	path := cowdtest.RequireTool(t, "qemu-img")
	out, err := exec.Command(path, append(append([]string{"check"}, extra...), img)...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("qemu-img check: %v", err)
	}
	return string(out), 0
}
