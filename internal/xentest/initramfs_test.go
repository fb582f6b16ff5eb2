package xentest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestInitramfs lists and unpacks the archive with cpio(1), the reference
// reader of the newc format.
func TestInitramfs(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		Unavailable(t, "cpio not installed; run as root: apt-get install -y --no-install-recommends cpio")
	}
	dir := t.TempDir()
	write := func(p, data string, mode os.FileMode) string {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	m := &Manifest{Busybox: write("busybox", "bb", 0o755)}
	cfg := BootConfig{
		Files: map[string]string{
			"/xt/prog":         write("prog", "hello", 0o755),
			"pkg/p/testdata":   filepath.Dir(filepath.Dir(write("td/a/b.txt", "abc", 0o644))),
			"/lib/modules/x.y": write("odd.txt", "12345678", 0o644),
		},
		Modules:    []string{write("m/foo.ko", "ko", 0o644)},
		InitScript: "echo hi",
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	if err := writeInitramfs(initrd, m, cfg); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "cpio -itv --quiet <"+initrd)
	list, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio -t: %v", err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(list)), "\n") {
		f := strings.Fields(l)
		got = append(got, f[0]+" "+f[len(f)-1])
		if f[len(f)-1] == "dev/console" && !strings.Contains(l, "5,") {
			t.Errorf("dev/console is not char 5,1: %s", l)
		}
	}
	want := []string{
		"drwxr-xr-x proc", "drwxr-xr-x sys", "drwxr-xr-x tmp", "drwxr-xr-x dev",
		"crw------- dev/console", "-rwxr-xr-x init",
		"drwxr-xr-x bin", "-rwxr-xr-x bin/busybox",
		"drwxr-xr-x lib", "drwxr-xr-x lib/modules", "-rw-r--r-- lib/modules/foo.ko",
		"-rw-r--r-- lib/modules/x.y",
		"drwxr-xr-x pkg", "drwxr-xr-x pkg/p", "drwxr-xr-x pkg/p/testdata",
		"drwxr-xr-x pkg/p/testdata/a", "-rw-r--r-- pkg/p/testdata/a/b.txt",
		"drwxr-xr-x xt", "-rwxr-xr-x xt/prog",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("archive listing (-want +got):\n%s", diff)
	}
	// Unpack the regular files and compare contents (no device nodes).
	cmd = exec.Command("sh", "-c", "cpio -id --quiet --no-absolute-filenames init xt/prog 'pkg/*' 'lib/*' <"+initrd)
	cmd.Dir = out
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v: %s", err, b)
	}
	for p, data := range map[string]string{
		"xt/prog": "hello", "pkg/p/testdata/a/b.txt": "abc",
		"lib/modules/x.y": "12345678", "lib/modules/foo.ko": "ko",
	} {
		if b, err := os.ReadFile(filepath.Join(out, p)); err != nil || string(b) != data {
			t.Errorf("%s = %q, %v; want %q", p, b, err, data)
		}
	}
	init, err := os.ReadFile(filepath.Join(out, "init"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"#!/bin/busybox sh\n", "insmod /lib/modules/foo.ko", "\necho hi\n", "poweroff -f"} {
		if !strings.Contains(string(init), s) {
			t.Errorf("/init lacks %q:\n%s", s, init)
		}
	}
}
