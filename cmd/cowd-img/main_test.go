package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/xentmem/xentmem/cowd"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func runCmd(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// newTestImage creates a 1 MiB base and an image with 64 KiB blocks, then
// writes a fixed pattern: blocks 1-2 data, block 4 zero, block 15 data.
func newTestImage(t *testing.T) (img, base string) {
	t.Helper()
	dir := t.TempDir()
	base = filepath.Join(dir, "base.img")
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i * 7)
	}
	if err := os.WriteFile(base, b, 0o600); err != nil {
		t.Fatal(err)
	}
	img = filepath.Join(dir, "t.dscow")
	if code, _, errOut := runCmd("create", img, base, "64"); code != 0 {
		t.Fatalf("create: %s", errOut)
	}
	d, err := cowd.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.WriteAt(make([]byte, 100<<10), 70<<10); err != nil {
		t.Fatal(err)
	}
	if err := d.Trim(4<<16, 1<<16); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAt([]byte{1}, 1<<20-1); err != nil {
		t.Fatal(err)
	}
	return img, base
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

func TestMapAndCheckOutput(t *testing.T) {
	img, _ := newTestImage(t)
	code, out, errOut := runCmd("map", img)
	if code != 0 {
		t.Fatal(errOut)
	}
	golden(t, "map", out)
	code, out, _ = runCmd("check", img)
	if code != 0 {
		t.Fatalf("check exit %d:\n%s", code, out)
	}
	golden(t, "check", strings.ReplaceAll(out, img, "IMAGE"))
	code, out, _ = runCmd("map", "-o", "json", img)
	var exts []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &exts) != nil || len(exts) != 6 {
		t.Fatalf("map -o json exit %d:\n%s", code, out)
	}
	code, out, _ = runCmd("info", "-o", "json", img)
	var info imageInfo
	if code != 0 || json.Unmarshal([]byte(out), &info) != nil {
		t.Fatalf("info -o json exit %d:\n%s", code, out)
	}
	if diff := cmp.Diff([3]int64{3, 1, 12}, [3]int64{info.Mapped, info.Zero, info.InBase}); diff != "" {
		t.Errorf("info block counts (-want +got):\n%s", diff)
	}
}

func TestCheckExitCodes(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, img string, h cowd.Header)
		want   int
	}{
		{name: "clean", damage: func(*testing.T, string, cowd.Header) {}, want: 0},
		{name: "partial block at the end", damage: func(t *testing.T, img string, _ cowd.Header) {
			f, err := os.OpenFile(img, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(make([]byte, 1000))
			f.Close()
		}, want: 3},
		{name: "bad map entry", damage: func(t *testing.T, img string, h cowd.Header) {
			f, err := os.OpenFile(img, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte{0xff}, h.MapOffset+16+3) // block 1's data offset
			f.Close()
		}, want: 2},
		{name: "data cut off", damage: func(t *testing.T, img string, h cowd.Header) {
			if err := os.Truncate(img, h.DataOffset+64<<10); err != nil {
				t.Fatal(err)
			}
		}, want: 2},
		{name: "base changed", damage: func(t *testing.T, _ string, h cowd.Header) {
			if err := os.WriteFile(h.Base.Path, make([]byte, h.Size), 0o600); err != nil {
				t.Fatal(err)
			}
		}, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, _ := newTestImage(t)
			im, err := cowd.OpenImage(img, nil)
			if err != nil {
				t.Fatal(err)
			}
			h := im.Header
			im.Close()
			tt.damage(t, img, h)
			if code, out, errOut := runCmd("check", img); code != tt.want {
				t.Fatalf("check exit %d, want %d:\n%s%s", code, tt.want, out, errOut)
			}
			if tt.want == 3 {
				if code, out, errOut := runCmd("check", "-r", img); code != 0 {
					t.Fatalf("check -r exit %d:\n%s%s", code, out, errOut)
				}
			}
		})
	}
}

func TestCommit(t *testing.T) {
	img, base := newTestImage(t)
	d, err := cowd.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, d.Size())
	d.ReadAt(want, 0)
	d.Close()
	code, out, errOut := runCmd("commit", img)
	if code != 0 || !strings.Contains(out, "Image committed.") || !strings.Contains(errOut, "commit: 100%") {
		t.Fatalf("commit exit %d:\n%s%s", code, out, errOut)
	}
	got, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("base after commit differs from the overlay view")
	}
	if code, out, _ := runCmd("check", img); code != 0 {
		t.Fatalf("check after commit:\n%s", out)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{name: "no command", args: nil, want: 2},
		{name: "help", args: []string{"--help"}, want: 0},
		{name: "unknown command", args: []string{"frobnicate"}, want: 2},
		{name: "create without base", args: []string{"create", "x.dscow"}, want: 2},
		{name: "create bad block size", args: []string{"create", "x.dscow", "/dev/null", "abc"}, want: 2},
		{name: "info bad format", args: []string{"info", "-o", "xml", "x"}, want: 2},
		{name: "info missing image", args: []string{"info", "/nonexistent.dscow"}, want: 1},
		{name: "check missing image", args: []string{"check", "/nonexistent.dscow"}, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, _, _ := runCmd(tt.args...); code != tt.want {
				t.Fatalf("exit %d, want %d", code, tt.want)
			}
		})
	}
}
