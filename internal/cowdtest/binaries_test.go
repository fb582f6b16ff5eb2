package cowdtest_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Binaries of cmd/cowd and cmd/cowd-img, built once per test run.
var bins struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

// buildBinaries builds cowd and cowd-img (without the race detector: they
// run as separate processes) and returns their paths.
func buildBinaries(t *testing.T) (cowdBin, imgBin string) {
	t.Helper()
	bins.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			bins.err = fmt.Errorf("the go tool is needed to build cowd: %w", err)
			return
		}
		if bins.dir, bins.err = os.MkdirTemp("", "cowd-bin-"); bins.err != nil {
			return
		}
		out, err := exec.Command(goBin, "build", "-o", bins.dir+string(filepath.Separator),
			"github.com/xentmem/xentmem/cmd/cowd", "github.com/xentmem/xentmem/cmd/cowd-img").CombinedOutput()
		if err != nil {
			bins.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return filepath.Join(bins.dir, "cowd"), filepath.Join(bins.dir, "cowd-img")
}

// waitSocket waits until a unix socket accepts connections, or the process
// behind exited fails the test.
func waitSocket(t *testing.T, sock string, exited <-chan struct{}, stderr *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("cowd exited before serving:\n%s", stderr)
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatalf("cowd did not serve on %s within 10s:\n%s", sock, stderr)
}

// runImg runs cowd-img and returns its exit code and output.
func runImg(t *testing.T, imgBin string, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(imgBin, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("cowd-img %v: %v", args, err)
	return 0, ""
}
