package xentest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Manifest describes a prepared cache: the keys of CACHE_DIR/manifest.env.
type Manifest struct {
	Dir        string // the cache directory
	Xen        string // uncompressed Xen ELF
	XenVersion string // Debian version of xen-hypervisor-4.17-amd64
	Vmlinuz    string // dom0 kernel
	KernelPkg  string // e.g. linux-image-6.1.0-56-amd64
	KVer       string // kernel release, e.g. 6.1.0-56-amd64
	ModulesDir string // lib/modules/KVER (drivers/xen and drivers/block only)
	PrivcmdKO  string // xen-privcmd.ko of the same kernel package
	NBDKO      string // nbd.ko of the same kernel package
	Busybox    string // static busybox
	Script     string // path of xen-qemu.sh
}

var prepared struct {
	sync.Mutex
	m   *Manifest
	err error
}

// Unavailable stops t because a component is missing: t.Fatal under
// CI=true, where nothing may skip for lack of a component, t.Skip otherwise.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and a required component is missing: "+format, args...)
	}
	t.Skipf(format, args...)
}

// RepoRoot returns the directory holding the module's go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// CacheDir is $XENTMEM_CACHE, or <repo>/.cache/xen.
func CacheDir() (string, error) {
	if d := os.Getenv("XENTMEM_CACHE"); d != "" {
		return filepath.Abs(d)
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache", "xen"), nil
}

// Prepare runs "xen-qemu.sh prepare" once per test binary and returns the
// manifest. It skips under -short, and calls [Unavailable] when the host
// lacks a component (the message carries the command that fixes it).
func Prepare(t testing.TB) *Manifest {
	t.Helper()
	if testing.Short() {
		t.Skip("boots Xen under QEMU (20-60 s); skipped with -short")
	}
	if runtime.GOOS != "linux" {
		Unavailable(t, "needs a Debian/Linux host, not %s", runtime.GOOS)
	}
	prepared.Lock()
	defer prepared.Unlock()
	if prepared.m == nil && prepared.err == nil {
		prepared.m, prepared.err = prepare()
	}
	if prepared.err != nil {
		Unavailable(t, "%v", prepared.err)
	}
	return prepared.m
}

func prepare() (*Manifest, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	script := filepath.Join(root, "internal", "xentest", "xen-qemu.sh")
	dir, err := CacheDir()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	// Downloads are ~75 MB; a hung mirror must not eat the test timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", script, "prepare", dir)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("sh %s prepare %s: %v\n%s", script, dir, err,
			strings.TrimSpace(stderr.String()))
	}
	return readManifest(dir, script)
}

func readManifest(dir, script string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, "manifest.env"))
	if err != nil {
		return nil, err
	}
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			kv[k] = strings.Trim(v, "'")
		}
	}
	m := &Manifest{
		Dir: dir, Script: script,
		Xen: kv["XEN"], XenVersion: kv["XEN_PKG_VERSION"],
		Vmlinuz: kv["VMLINUZ"], KernelPkg: kv["KERNEL_PKG"], KVer: kv["KVER"],
		ModulesDir: kv["MODULES_DIR"], PrivcmdKO: kv["PRIVCMD_KO"],
		NBDKO: kv["NBD_KO"], Busybox: kv["BUSYBOX"],
	}
	for _, p := range []string{m.Xen, m.Vmlinuz, m.PrivcmdKO, m.Busybox} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("manifest %s/manifest.env: %v", dir, err)
		}
	}
	if err := checkStatic(m.Busybox); err != nil {
		return nil, fmt.Errorf("%v; run as root: apt-get install -y --no-install-recommends busybox-static", err)
	}
	return m, nil
}
