package qcow2

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseHeaderQemu parses headers that qemu-img wrote.
func TestParseHeaderQemu(t *testing.T) {
	type summary struct {
		Version, ClusterBits, RefcountOrder, HeaderLength uint32
		Incompat, Compat                                  uint64
		BackingFile, BackingFormat                        string
		LazyName                                          string
	}
	tests := []struct {
		name string
		args []string
		want summary
	}{
		{"v3 with backing", []string{"-b", "base.raw", "-F", "raw"},
			summary{3, 16, 4, 112, 0, 0, "base.raw", "raw", "lazy refcounts"}},
		{"v2", []string{"-o", "compat=0.10", "-b", "base.raw", "-F", "raw"},
			summary{2, 16, 4, 72, 0, 0, "base.raw", "raw", ""}},
		{"extended L2 and lazy refcounts", []string{"-o", "extended_l2=on,cluster_size=128k,lazy_refcounts=on,refcount_bits=64"},
			summary{3, 17, 6, 112, IncompatExtendedL2, CompatLazyRefcounts, "", "", "lazy refcounts"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "base.raw"), make([]byte, 1<<20))
			img := filepath.Join(dir, "x.qcow2")
			mustTool(t, "qemu-img", append(append([]string{"create", "-q", "-f", "qcow2"}, tt.args...), img, "1M")...)
			b, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			h, err := ParseHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			got := summary{h.Version, h.ClusterBits, h.RefcountOrder, h.HeaderLength, h.IncompatibleFeatures,
				h.CompatibleFeatures, h.BackingFile, h.BackingFormat, h.FeatureName(1, 0)}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseHeaderErrors(t *testing.T) {
	h := Header{Version: 3, ClusterBits: 16, Size: 1 << 30, L1Size: 2, L1TableOffset: 3 << 16,
		RefcountTableOffset: 1 << 16, RefcountTableClusters: 1, RefcountOrder: 4, HeaderLength: 112,
		BackingFile: "base.raw", BackingFormat: "raw"}
	good, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseHeader(good); err != nil {
		t.Fatalf("the unmodified header: %v", err)
	}
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	put32 := func(off int, v uint32) []byte {
		return mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[off:], v); return b })
	}
	put64 := func(off int, v uint64) []byte {
		return mod(func(b []byte) []byte { binary.BigEndian.PutUint64(b[off:], v); return b })
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrFormat},
		{"bad magic", put32(0, 0x514649fa), ErrFormat},
		{"version 1", put32(4, 1), ErrUnsupported},
		{"version 4", put32(4, 4), ErrUnsupported},
		{"truncated", good[:90], ErrFormat},
		{"cluster bits 8", put32(20, 8), ErrFormat},
		{"cluster bits 22", put32(20, 22), ErrFormat},
		{"header length 100", put32(100, 100), ErrFormat},
		{"header length 108", put32(100, 108), ErrFormat},
		{"refcount order 7", put32(96, 7), ErrFormat},
		{"compression type without feature bit", mod(func(b []byte) []byte { b[104] = 1; return b }), ErrFormat},
		{"extended L2 with 8 KiB clusters", mod(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[20:], 13)
			binary.BigEndian.PutUint64(b[72:], IncompatExtendedL2)
			return b
		}), ErrFormat},
		{"extension overruns the cluster", put32(112+4, 1<<20), ErrFormat},
		{"backing name too long", put32(16, 2000), ErrFormat},
		{"backing name outside the cluster", put64(8, 1<<17), ErrFormat},
		{"L1 table too small", put32(36, 1), ErrFormat},
		{"L1 table unaligned", put64(40, 3<<16+512), ErrFormat},
		{"no refcount table", put32(56, 0), ErrFormat},
		{"virtual size", put64(24, 1<<62), ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseHeader(tt.in); !errors.Is(err, tt.want) {
				t.Errorf("ParseHeader: %v, want %v", err, tt.want)
			}
		})
	}
}
