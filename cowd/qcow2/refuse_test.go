package qcow2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// patch overwrites bytes of a file at off.
func patch(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// TestRefusals opens images cowd must not write and requires a clear error
// at Open with the file left byte for byte as it was.
func TestRefusals(t *testing.T) {
	secret := []string{"--object", "secret,id=sec0,data=123456"}
	tests := []struct {
		name  string
		build func(t *testing.T, dir, img string)
		want  error
		// inspect: OpenImage (read-only inspection) must still work.
		inspect bool
	}{
		{name: "luks encryption", want: ErrUnsupported, build: func(t *testing.T, dir, img string) {
			mustTool(t, "qemu-img", append(append([]string{"create", "-q", "-f", "qcow2"}, secret...),
				"-o", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10", img, "1M")...)
		}},
		{name: "aes encryption", want: ErrUnsupported, build: func(t *testing.T, dir, img string) {
			mustTool(t, "qemu-img", append(append([]string{"create", "-q", "-f", "qcow2"}, secret...),
				"-o", "encryption=on,encrypt.key-secret=sec0", img, "1M")...)
		}},
		{name: "external data file", want: ErrUnsupported, build: func(t *testing.T, dir, img string) {
			mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "data_file="+filepath.Join(dir, "data.raw"), img, "1M")
		}},
		{name: "zstd compression", want: ErrUnsupported, build: func(t *testing.T, dir, img string) {
			mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "compression_type=zstd", img, "1M")
		}},
		{name: "unknown incompatible feature", want: ErrUnsupported, build: func(t *testing.T, dir, img string) {
			mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "1M")
			patch(t, img, 72, be64(1<<20))
		}},
		{name: "internal snapshot", want: ErrUnsupported, inspect: true, build: func(t *testing.T, dir, img string) {
			mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "1M")
			mustTool(t, "qemu-io", "-c", "write 0 64k", img)
			mustTool(t, "qemu-img", "snapshot", "-c", "s1", img)
		}},
		{name: "persistent bitmap", want: ErrUnsupported, inspect: true, build: func(t *testing.T, dir, img string) {
			mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "1M")
			mustTool(t, "qemu-img", "bitmap", "--add", img, "b0")
		}},
		{name: "corrupt bit", want: ErrCorrupt, inspect: true, build: func(t *testing.T, dir, img string) {
			mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "1M")
			patch(t, img, 72, be64(IncompatCorrupt))
		}},
		{name: "qcow version 1", want: ErrUnsupported, build: func(t *testing.T, dir, img string) {
			mustTool(t, "qemu-img", "create", "-q", "-f", "qcow", img, "1M")
		}},
		{name: "not qcow2", want: ErrFormat, build: func(t *testing.T, dir, img string) {
			writeFile(t, img, make([]byte, 1<<20))
		}},
		{name: "cluster bits", want: ErrFormat, build: func(t *testing.T, dir, img string) {
			mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "1M")
			patch(t, img, 20, []byte{0, 0, 0, 30})
		}},
		{name: "L1 table past the end", want: ErrCorrupt, build: func(t *testing.T, dir, img string) {
			mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "1M")
			patch(t, img, 40, be64(1<<30))
		}},
		{name: "L1 entry unaligned", want: ErrCorrupt, build: func(t *testing.T, dir, img string) {
			mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "1M")
			patch(t, img, 3<<16, be64(flagCopied|0x10200))
		}},
		{name: "L1 entry reserved bits", want: ErrCorrupt, build: func(t *testing.T, dir, img string) {
			mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "1M")
			mustTool(t, "qemu-io", "-c", "write 0 4k", img)
			f, _ := os.ReadFile(img)
			e := binary.BigEndian.Uint64(f[3<<16:])
			patch(t, img, 3<<16, be64(e|1<<60))
		}},
		{name: "L1 entry past the end", want: ErrCorrupt, build: func(t *testing.T, dir, img string) {
			mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "1M")
			patch(t, img, 3<<16, be64(flagCopied|1<<40))
		}},
		{name: "refcount block past the end", want: ErrCorrupt, build: func(t *testing.T, dir, img string) {
			mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "1M")
			patch(t, img, 1<<16+8, be64(1<<40))
		}},
		{name: "metadata without refcount", want: ErrCorrupt, build: func(t *testing.T, dir, img string) {
			mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "1M")
			patch(t, img, 2<<16+3*2, []byte{0, 0}) // refcount of the L1 table's cluster
		}},
		{name: "missing backing file", want: os.ErrNotExist, build: func(t *testing.T, dir, img string) {
			writeFile(t, filepath.Join(dir, "b.raw"), make([]byte, 1<<20))
			mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "b.raw", "-F", "raw", img)
			os.Remove(filepath.Join(dir, "b.raw"))
		}},
		{name: "backing format vmdk", want: ErrUnsupported, build: func(t *testing.T, dir, img string) {
			mustTool(t, "qemu-img", "create", "-q", "-f", "vmdk", filepath.Join(dir, "b.vmdk"), "1M")
			mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "b.vmdk", "-F", "vmdk", img)
		}},
		{name: "backing loop", want: ErrFormat, build: func(t *testing.T, dir, img string) {
			a := filepath.Join(dir, "a.qcow2")
			mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", a, "1M")
			mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", img)
			mustTool(t, "qemu-img", "rebase", "-u", "-f", "qcow2", "-b", "ov.qcow2", "-F", "qcow2", a)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "ov.qcow2")
			tt.build(t, dir, img)
			before, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			d, err := Open(img, nil)
			if err == nil {
				d.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open: %v, want an error wrapping %v", err, tt.want)
			}
			t.Logf("Open: %v", err)
			after, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Fatal("the refused image was modified")
			}
			if tt.inspect {
				im, err := OpenImage(img, nil)
				if err != nil {
					t.Fatalf("OpenImage: %v", err)
				}
				im.Close()
			}
		})
	}
}

// TestCorruptL2 checks that an L2 table found corrupt on first use fails
// the request and stops all writes, and leaves the file alone.
func TestCorruptL2(t *testing.T) {
	for _, tt := range []struct {
		name  string
		entry func(l1 uint64) uint64
	}{
		{"reserved bits", func(uint64) uint64 { return flagCopied | 0x50000 | 1<<58 }},
		{"points into the L1 table", func(uint64) uint64 { return flagCopied | 3<<16 }},
		{"points into itself", func(l1 uint64) uint64 { return flagCopied | l1&offsetMask }},
		{"past the end", func(uint64) uint64 { return flagCopied | 1<<40 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "ov.qcow2")
			mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "4M")
			mustTool(t, "qemu-io", "-c", "write -P 1 0 128k", img)
			f, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			l1 := binary.BigEndian.Uint64(f[3<<16:])
			patch(t, img, int64(l1&offsetMask)+8, be64(tt.entry(l1))) // guest cluster 1
			before, _ := os.ReadFile(img)
			d := openTest(t, img, nil)
			p := make([]byte, 4096)
			if _, err := d.ReadAt(p, 0); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("read of a cluster in the corrupt L2 table: %v, want ErrCorrupt", err)
			}
			if _, err := d.WriteAt(p, 2<<20); !errors.Is(err, ErrFailed) {
				t.Fatalf("write after corruption was found: %v, want ErrFailed", err)
			}
			d.Close()
			after, _ := os.ReadFile(img)
			if !bytes.Equal(before, after) {
				t.Fatal("the corrupt image was modified")
			}
		})
	}
}
