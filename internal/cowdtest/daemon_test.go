package cowdtest_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xentmem/xentmem/internal/cowdtest"
)

// TestDaemon starts cowd as a daemon (no -n): the parent must return 0
// once the socket serves; SIGHUP reloads the map; SIGTERM flushes, removes
// the pid file and socket, and leaves a clean image.
func TestDaemon(t *testing.T) {
	cowdBin, imgBin := buildBinaries(t)
	dir := t.TempDir()
	base := randomBytes(2*mib, 3)
	basePath, img := filepath.Join(dir, "base.img"), filepath.Join(dir, "d.dscow")
	sock, pidFile, logFile := filepath.Join(dir, "run", "d.sock"), filepath.Join(dir, "d.pid"), filepath.Join(dir, "log")
	if err := os.WriteFile(basePath, base, 0o400); err != nil {
		t.Fatal(err)
	}
	if code, out := runImg(t, imgBin, "create", img, basePath, "32"); code != 0 {
		t.Fatal(out)
	}
	out, err := exec.Command(cowdBin, "-v", "-I", "-b", "32", "-i", pidFile, "--log", logFile,
		"--listen", "unix:"+sock, "d", img).CombinedOutput()
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
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v, mode %v", err, fi.Mode())
	}
	c, err := cowdtest.Dial("unix", sock, &cowdtest.DialOptions{Export: "d"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(bytes.Repeat([]byte{7}, 5000), 1000, true); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { b, _ := os.ReadFile(logFile); return bytes.Contains(b, []byte("mappings reloaded")) })
	p := make([]byte, 5000)
	if err := c.Read(p, 1000); err != nil || !bytes.Equal(p, bytes.Repeat([]byte{7}, 5000)) {
		t.Fatalf("read after SIGHUP: %v", err)
	}
	c.Close()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return processGone(pid) })
	for _, f := range []string{pidFile, sock} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s still exists after SIGTERM", f)
		}
	}
	if code, out := runImg(t, imgBin, "check", img); code != 0 {
		t.Fatalf("check after SIGTERM: exit %d\n%s", code, out)
	}
	if code, out := runImg(t, imgBin, "info", img); code != 0 || !strings.Contains(out, "block size: 32768") ||
		!strings.Contains(out, "state: clean") {
		t.Fatalf("info after SIGTERM:\n%s", out)
	}
}

// TestDaemonReportsFailure checks that the waiting parent reports a child
// that cannot serve, here because the base changed.
func TestDaemonReportsFailure(t *testing.T) {
	cowdBin, imgBin := buildBinaries(t)
	dir := t.TempDir()
	basePath, img := filepath.Join(dir, "base.img"), filepath.Join(dir, "d.dscow")
	if err := os.WriteFile(basePath, randomBytes(mib, 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := runImg(t, imgBin, "create", img, basePath); code != 0 {
		t.Fatal(out)
	}
	if err := os.Truncate(basePath, mib/2); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(cowdBin, "--listen", "unix:"+filepath.Join(dir, "s"), "d", img).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "shorter than recorded") {
		t.Fatalf("cowd with a truncated base: %v\n%s", err, out)
	}
}

// processGone reports whether pid has exited (a zombie not yet reaped by
// init counts as gone).
func processGone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || bytes.HasPrefix(stat[i+1:], []byte(" Z"))
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("timed out")
}
