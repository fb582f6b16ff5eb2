package cowdtest_test

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/xentmem/xentmem/cowd"
	"github.com/xentmem/xentmem/cowd/nbd"
	"github.com/xentmem/xentmem/internal/cowdtest"
)

// served is cowd running in-process: a dscow image over a random base,
// served on a unix socket until the test ends.
type served struct {
	dir  string
	sock string
	uri  string
	base []byte
	img  string
	dev  *cowd.Device
}

// randomBytes returns deterministic pseudo-random content.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

// serve creates a base of size bytes and an image with blocks of bs bytes,
// and serves it. At cleanup it stops the server, closes the image and
// requires a clean check.
func serve(t *testing.T, size, bs int, opts *cowd.Options) *served {
	t.Helper()
	return serveIn(t, "", size, bs, opts)
}

// serveIn is serve with the image in imgDir ("" for the test directory).
func serveIn(t *testing.T, imgDir string, size, bs int, opts *cowd.Options) *served {
	t.Helper()
	dir := t.TempDir()
	if imgDir == "" {
		imgDir = dir
	}
	s := &served{dir: dir, base: randomBytes(size, uint64(size+bs)), img: filepath.Join(imgDir, "disk.dscow")}
	basePath := filepath.Join(dir, "base.img")
	if err := os.WriteFile(basePath, s.base, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := cowd.Create(s.img, basePath, &cowd.CreateOptions{BlockSize: bs}); err != nil {
		t.Fatal(err)
	}
	dev, err := cowd.Open(s.img, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.dev = dev
	srv, err := nbd.NewServer(&nbd.Config{
		Exports: []nbd.Export{{Name: "disk", Device: dev, Size: dev.Size(), MultiConn: true,
			BlockSize: nbd.BlockSizes{Min: 1, Preferred: uint32(bs), Max: 32 << 20}}},
		Logger: zaptest.NewLogger(t).Named("nbd"),
	})
	if err != nil {
		t.Fatal(err)
	}
	s.sock = filepath.Join(dir, "s.sock")
	s.uri = "nbd+unix:///disk?socket=" + s.sock
	l, err := nbd.Listen("unix:" + s.sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if err := dev.Close(); err != nil {
			t.Errorf("close image: %v", err)
		}
		requireClean(t, s.img)
	})
	return s
}

func requireClean(t *testing.T, img string) {
	t.Helper()
	im, err := cowd.OpenImage(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	r, err := im.Check(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if r.ExitCode() != 0 {
		t.Errorf("image check: exit %d: %v", r.ExitCode(), r.Errors)
	}
}

// contents reads the whole device through the engine directly.
func (s *served) contents(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, s.dev.Size())
	if _, err := s.dev.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

// runTool runs an external client and fails the test with its output.
func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	path := cowdtest.RequireTool(t, name)
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// firstDiff describes where two images differ.
func firstDiff(a, b []byte) string {
	if len(a) != len(b) {
		return "sizes differ"
	}
	for i := range a {
		if a[i] != b[i] {
			return "first difference at byte " + strconv.Itoa(i)
		}
	}
	return ""
}
