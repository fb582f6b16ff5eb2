package cowd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func testHeader(t testing.TB) Header {
	t.Helper()
	h, err := newHeader(64<<10, [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), BaseIdentity{
			Path: "/var/lib/xen/images/golden.img", Size: 10<<30 + 512,
			ModTime: time.Date(2025, 12, 24, 0, 0, 0, 0, time.UTC),
			Samples: identitySamples, SampleLen: identitySampleLen, Digest: [32]byte{0xaa, 31: 0x55},
		})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHeaderRoundTrip(t *testing.T) {
	h := testHeader(t)
	b, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != headerCopySize {
		t.Fatalf("encoded header is %d bytes, want %d", len(b), headerCopySize)
	}
	var got Header
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(h, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestHeaderDecodeErrors(t *testing.T) {
	good, err := func() ([]byte, error) { h := testHeader(t); return h.MarshalBinary() }()
	if err != nil {
		t.Fatal(err)
	}
	reseal := func(b []byte) []byte {
		b = bytes.Clone(b)
		binary.BigEndian.PutUint32(b[headerCopySize-4:], crc32.Checksum(b[:headerCopySize-4], castagnoli))
		return b
	}
	mod := func(off int, v byte) []byte { b := bytes.Clone(good); b[off] = v; return reseal(b) }
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{name: "short", in: good[:100], want: ErrFormat},
		{name: "bad magic", in: mod(0, 'X'), want: ErrFormat},
		{name: "bad checksum", in: func() []byte { b := bytes.Clone(good); b[500] = 1; return b }(), want: ErrFormat},
		{name: "newer version", in: mod(11, 2), want: ErrVersion},
		{name: "unknown feature", in: mod(19, 0x80), want: ErrVersion},
		{name: "block size not a power of two", in: mod(22, 0x03), want: ErrFormat},
		{name: "block count mismatch", in: mod(39, 0x07), want: ErrFormat},
		{name: "path too long", in: mod(160, 0x7f), want: ErrFormat},
		{name: "garbage after path", in: mod(1500, 1), want: ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Header
			err := h.UnmarshalBinary(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("UnmarshalBinary error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestHeaderAreaFallsBackToSecondary(t *testing.T) {
	h := testHeader(t)
	b, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	area := make([]byte, headerArea)
	copy(area[headerCopySize:], b)
	copy(area, b[:700]) // torn primary
	got, err := decodeHeaderArea(area)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(h, got); diff != "" {
		t.Errorf("secondary header (-want +got):\n%s", diff)
	}
}

// FuzzHeader checks that decoding never panics and that anything that
// decodes survives encode and decode unchanged.
func FuzzHeader(f *testing.F) {
	h := testHeader(f)
	b, err := h.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:64])
	f.Add(make([]byte, headerCopySize))
	f.Fuzz(func(t *testing.T, in []byte) {
		var h1 Header
		if err := h1.UnmarshalBinary(in); err != nil {
			return
		}
		enc, err := h1.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded header does not encode: %v", err)
		}
		var h2 Header
		if err := h2.UnmarshalBinary(enc); err != nil {
			t.Fatalf("re-encoded header does not decode: %v", err)
		}
		if diff := cmp.Diff(h1, h2); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
