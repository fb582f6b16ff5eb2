package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/xentmem/xentmem/cowd/qcow2"
	"github.com/xentmem/xentmem/internal/cowdtest"
)

func TestIsQcow2Create(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{[]string{"-f", "qcow2", "-b", "b", "x"}, true},
		{[]string{"-b", "b", "-f=qcow2", "x"}, true},
		{[]string{"x.dscow", "base"}, false},
		{[]string{"-f", "x.dscow", "base"}, false},
		{[]string{"--", "-f", "qcow2"}, false},
	}
	for _, tt := range tests {
		if got := isQcow2Create(tt.args); got != tt.want {
			t.Errorf("isQcow2Create(%q) = %t, want %t", tt.args, got, tt.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"512": 512, "64k": 64 << 10, "64K": 64 << 10, "2M": 2 << 20,
		"10G": 10 << 30, "1T": 1 << 40, "3MiB": 3 << 20} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "k", "-1", "1.5G", "12X", "99999999999E"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
}

// TestQcow2Commands drives create, info, check, map and commit on qcow2
// images and checks the results with qemu-img.
func TestQcow2Commands(t *testing.T) {
	qemuImg := cowdtest.RequireTool(t, "qemu-img")
	qemuIO := cowdtest.RequireTool(t, "qemu-io")
	dir := t.TempDir()
	base := filepath.Join(dir, "base.raw")
	content := bytes.Repeat([]byte{0x42}, 4<<20)
	if err := os.WriteFile(base, content, 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "ov.qcow2")
	code, out, errOut := runCmd("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", img, "-o", "cluster_size=128k,extended_l2=on")
	if code != 0 || !strings.Contains(out, "fmt=qcow2 cluster_size=131072 extended_l2=on") {
		t.Fatalf("create exit %d:\n%s%s", code, out, errOut)
	}
	if out, err := exec.Command(qemuImg, "check", img).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img check: %v\n%s", err, out)
	}
	if out, err := exec.Command(qemuIO, "-f", "qcow2", "-c", "write -P 7 100k 8k", "-c", "write -z 1M 1M", img).CombinedOutput(); err != nil {
		t.Fatalf("qemu-io: %v\n%s", err, out)
	}

	code, out, errOut = runCmd("info", "-o", "json", img)
	var info qcow2Info
	if code != 0 || json.Unmarshal([]byte(out), &info) != nil {
		t.Fatalf("info exit %d:\n%s%s", code, out, errOut)
	}
	want := qcow2Info{Image: img, Format: "qcow2", Compat: "1.1", VirtualSize: 4 << 20, ActualSize: info.ActualSize,
		ClusterSize: 128 << 10, BackingFile: "base.raw", FullBackingFile: base, BackingFormat: "raw", ExtendedL2: true,
		RefcountBits: 16, Clusters: 32, DataClusters: 1, ZeroClusters: 8, BackingClusters: 23}
	if diff := cmp.Diff(want, info); diff != "" {
		t.Errorf("info (-want +got):\n%s", diff)
	}
	if code, out, _ := runCmd("info", img); code != 0 || !strings.Contains(out, "extended l2: true") {
		t.Errorf("info exit %d:\n%s", code, out)
	}

	code, out, _ = runCmd("check", "-o", "json", img)
	var rep qcow2CheckReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.AllocatedClusters != 1 || rep.Corruptions != 0 {
		t.Fatalf("check exit %d:\n%s", code, out)
	}
	if code, out, _ := runCmd("check", img); code != 0 || !strings.Contains(out, "No errors were found on the image.") {
		t.Fatalf("check exit %d:\n%s", code, out)
	}

	code, out, _ = runCmd("map", "-o", "json", img)
	var exts []qcow2.Extent
	if code != 0 || json.Unmarshal([]byte(out), &exts) != nil {
		t.Fatalf("map exit %d:\n%s", code, out)
	}
	var states []string
	for _, e := range exts {
		states = append(states, e.State.String())
	}
	if diff := cmp.Diff([]string{"backing", "data", "backing", "zero", "backing"}, states); diff != "" {
		t.Errorf("map states (-want +got):\n%s", diff)
	}

	code, out, errOut = runCmd("commit", img)
	if code != 0 || !strings.Contains(out, "Image committed.") || !strings.Contains(errOut, "commit: 100%") {
		t.Fatalf("commit exit %d:\n%s%s", code, out, errOut)
	}
	got, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	copy(content[100<<10:], bytes.Repeat([]byte{7}, 8<<10))
	clear(content[1<<20 : 2<<20])
	if !bytes.Equal(got, content) {
		t.Fatal("base after commit differs from the overlay's view")
	}
	if code, out, _ := runCmd("check", img); code != 0 {
		t.Fatalf("check after commit exit %d:\n%s", code, out)
	}
}

// TestQcow2CheckExitCodes checks cowd-img check's exit codes (1 when the
// check cannot run, 3 for leaks) and that -r repairs leaks.
func TestQcow2CheckExitCodes(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "a.qcow2")
	if code, out, errOut := runCmd("create", "-f", "qcow2", img, "1M"); code != 0 {
		t.Fatalf("create: %s%s", out, errOut)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(make([]byte, 64<<10), 4<<16) // cluster 4 exists...
	f.WriteAt([]byte{0, 1}, 2<<16+2*4)     // ...has a refcount, and nothing uses it
	f.Close()
	if code, out, _ := runCmd("check", img); code != 3 {
		t.Fatalf("check of a leaking image: exit %d, want 3\n%s", code, out)
	}
	if code, out, _ := runCmd("check", "-r", img); code != 0 {
		t.Fatalf("check -r: exit %d\n%s", code, out)
	}
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"create without size", []string{"create", "-f", "qcow2", filepath.Join(dir, "b.qcow2")}, 2},
		{"create bad option", []string{"create", "-f", "qcow2", "-o", "frob=1", filepath.Join(dir, "c.qcow2"), "1M"}, 2},
		{"create bad size", []string{"create", "-f", "qcow2", filepath.Join(dir, "c.qcow2"), "1X"}, 2},
		{"create existing", []string{"create", "-f", "qcow2", img, "1M"}, 1},
		{"create existing with -force", []string{"create", "-f", "qcow2", "-force", img, "1M"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, out, errOut := runCmd(tt.args...); code != tt.want {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.want, out, errOut)
			}
		})
	}
}
