package cowd

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRecordCodec(t *testing.T) {
	h := testHeader(t)
	tests := []struct {
		name  string
		block int64
		st    uint64
	}{
		{name: "base", block: 0, st: stateBase},
		{name: "zero", block: 7, st: stateZero},
		{name: "mapped slot 0", block: 9, st: 0<<stateShift | stateMapped},
		{name: "mapped high slot", block: h.Blocks - 1, st: 123456<<stateShift | stateMapped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b [recordSize]byte
			encodeRecord(b[:], &h.UUID, tt.block, recordOf(&h, tt.st))
			r, err := decodeRecord(b[:], &h.UUID, tt.block, &h)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.st, stateOf(&h, r)); diff != "" {
				t.Errorf("state (-want +got):\n%s", diff)
			}
			// The same bytes at another block number, or in another image,
			// must not decode: the checksum covers both.
			if _, err := decodeRecord(b[:], &h.UUID, tt.block+1, &h); !errors.Is(err, ErrFormat) {
				t.Errorf("entry moved to block %d decoded: %v", tt.block+1, err)
			}
			other := h.UUID
			other[0] ^= 1
			if _, err := decodeRecord(b[:], &other, tt.block, &h); !errors.Is(err, ErrFormat) {
				t.Errorf("entry of another image decoded: %v", err)
			}
		})
	}
}

func TestRecordDecodeErrors(t *testing.T) {
	h := testHeader(t)
	tests := []struct {
		name string
		rec  Record
	}{
		{name: "mapped below data area", rec: Record{Offset: 4096, Flags: recMapped}},
		{name: "mapped misaligned", rec: Record{Offset: uint64(h.DataOffset) + 512, Flags: recMapped}},
		{name: "offset on zero block", rec: Record{Offset: uint64(h.DataOffset), Flags: recZero}},
		{name: "both flags", rec: Record{Flags: recMapped | recZero}},
		{name: "unknown flag", rec: Record{Flags: 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b [recordSize]byte
			encodeRecord(b[:], &h.UUID, 3, tt.rec)
			if _, err := decodeRecord(b[:], &h.UUID, 3, &h); !errors.Is(err, ErrFormat) {
				t.Fatalf("decodeRecord error = %v, want ErrFormat", err)
			}
		})
	}
}

// FuzzRecord checks that decoding map entries never panics and that valid
// entries round-trip.
func FuzzRecord(f *testing.F) {
	h := testHeader(f)
	var b [recordSize]byte
	encodeRecord(b[:], &h.UUID, 5, Record{Offset: uint64(h.DataOffset) + 3*65536, Flags: recMapped})
	f.Add(b[:], int64(5))
	f.Add(make([]byte, recordSize), int64(0))
	f.Fuzz(func(t *testing.T, in []byte, block int64) {
		r, err := decodeRecord(in, &h.UUID, block, &h)
		if err != nil {
			return
		}
		var enc [recordSize]byte
		encodeRecord(enc[:], &h.UUID, block, recordOf(&h, stateOf(&h, r)))
		r2, err := decodeRecord(enc[:], &h.UUID, block, &h)
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if diff := cmp.Diff(r, r2); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// FuzzJournalHeader checks the journal header codec the same way.
func FuzzJournalHeader(f *testing.F) {
	b := make([]byte, pageSize)
	j := journalHeader{UUID: [16]byte{9}, Seq: 42, State: journalOpen, Pages: []uint32{0, 3, 17}, DataCRC: 0xdeadbeef}
	if err := j.marshal(b); err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:100])
	f.Fuzz(func(t *testing.T, in []byte) {
		var j1 journalHeader
		if err := j1.unmarshal(in); err != nil {
			return
		}
		enc := make([]byte, pageSize)
		if err := j1.marshal(enc); err != nil {
			t.Fatalf("decoded journal header does not encode: %v", err)
		}
		var j2 journalHeader
		if err := j2.unmarshal(enc); err != nil {
			t.Fatalf("re-encoded journal header does not decode: %v", err)
		}
		if diff := cmp.Diff(j1, j2); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
