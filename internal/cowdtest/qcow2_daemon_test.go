package cowdtest_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/xentmem/xentmem/internal/cowdtest"
)

// TestQcow2Daemon runs cowd -p qcow2 as a daemon over an image made by
// qemu-img: it serves, takes QEMU's locks (qemu-img info without -U
// fails), reloads on SIGHUP, leaves a clean image on SIGTERM, and -I
// empties the image.
func TestQcow2Daemon(t *testing.T) {
	cowdBin, imgBin := buildBinaries(t)
	dir, img, base := newQcow2Overlay(t, 2*mib, "cluster_size=16k")
	sock, pidFile, logFile := filepath.Join(dir, "run", "q.sock"), filepath.Join(dir, "q.pid"), filepath.Join(dir, "log")
	start := func(extra ...string) int {
		args := append([]string{"-v", "-p", "qcow2", "-i", pidFile, "--log", logFile, "--listen", "unix:" + sock}, extra...)
		out, err := exec.Command(cowdBin, append(args, "q", img)...).CombinedOutput()
		if err != nil {
			t.Fatalf("cowd (daemonising): %v\n%s", err, out)
		}
		raw, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
		return pid
	}
	stop := func(pid int) {
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return processGone(pid) })
	}
	pid := start()
	qemuImg := cowdtest.RequireTool(t, "qemu-img")
	if out, err := exec.Command(qemuImg, "info", img).CombinedOutput(); err == nil || !strings.Contains(string(out), "lock") {
		t.Errorf("qemu-img info without -U on a served image: %v\n%s", err, out)
	}
	c, err := cowdtest.Dial("unix", sock, &cowdtest.DialOptions{Export: "q"})
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte{9}, 5000)
	if err := c.Write(want, 1000, true); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { b, _ := os.ReadFile(logFile); return bytes.Contains(b, []byte("tables reloaded")) })
	got := make([]byte, len(want))
	if err := c.Read(got, 1000); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read after SIGHUP: %v", err)
	}
	c.Close()
	stop(pid)
	requireQemuClean(t, img)
	if content := qcow2Content(t, img); !bytes.Equal(content[1000:6000], want) {
		t.Fatal("the write is not in the image after SIGTERM")
	}
	if code, out := runImg(t, imgBin, "info", img); code != 0 || !strings.Contains(out, "1 data") {
		t.Fatalf("cowd-img info:\n%s", out)
	}
	pid = start("-I")
	stop(pid)
	requireQemuClean(t, img)
	if d := firstDiff(base, qcow2Content(t, img)); d != "" {
		t.Fatalf("after cowd -I the image should read as its backing file: %s", d)
	}
}
