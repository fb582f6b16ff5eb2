package qcow2

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The committed corpus under testdata/fuzz/ holds headers, L1 tables, L2
// tables and refcount blocks cut from images that qemu-img and qemu-io
// wrote (see corpus_test.go, which regenerates it).

// FuzzHeader checks that the header parser never panics and that what it
// accepts survives an encode/decode round trip.
func FuzzHeader(f *testing.F) {
	f.Add([]byte("QFI\xfb\x00\x00\x00\x03"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v wraps neither ErrFormat nor ErrUnsupported", err)
			}
			return
		}
		enc, err := h.MarshalBinary() // sets BackingFileOffset to where it puts the name
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("marshal: %v", err)
			}
			return
		}
		h2, err := ParseHeader(enc)
		if err != nil {
			t.Fatalf("re-parse of an encoded valid header: %v", err)
		}
		if diff := cmp.Diff(h, h2); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// fuzzGeometry builds a geometry from fuzzed parameters, or reports false.
func fuzzGeometry(clusterBits uint8, ext, v3 bool, refOrder uint8) (geometry, bool) {
	cb := minClusterBits + uint32(clusterBits)%(maxClusterBits-minClusterBits+1)
	if ext && (cb < 14 || !v3) {
		return geometry{}, false
	}
	h := Header{Version: 2, ClusterBits: cb, Size: 1 << 40, RefcountOrder: uint32(refOrder % 7)}
	if v3 {
		h.Version = 3
		if ext {
			h.IncompatibleFeatures = IncompatExtendedL2
		}
	}
	return newGeometry(&h), true
}

// FuzzL2 decodes an L2 table: validation must not panic, and every entry it
// accepts must classify consistently and re-encode to the same bits.
func FuzzL2(f *testing.F) {
	f.Add(make([]byte, 64), uint8(7), false, true, int64(1<<30))
	f.Fuzz(func(t *testing.T, table []byte, clusterBits uint8, ext, v3 bool, fileSize int64) {
		g, ok := fuzzGeometry(clusterBits, ext, v3, 4)
		if !ok {
			return
		}
		for i := int64(0); (i+1)<<g.entryShift <= int64(len(table)); i++ {
			e, bm := g.entry(table, i)
			if g.checkL2Entry(e, bm, fileSize) != nil {
				continue
			}
			var re uint64
			if e&flagCompressed != 0 {
				off, n := g.compressedRange(e)
				if off <= 0 || off >= fileSize || n < 1 || n > 2*g.clusterSize {
					t.Fatalf("compressed entry %#x: range %d+%d", e, off, n)
				}
				sectors := uint64((n+off&511)/512 - 1)
				re = flagCompressed | uint64(off) | sectors<<g.csizeShift
			} else {
				host := e & offsetMask
				if host != 0 && (int64(host) >= fileSize || int64(host)&(g.clusterSize-1) != 0) {
					t.Fatalf("entry %#x accepted with host offset %#x", e, host)
				}
				re = host | e&flagCopied | e&flagZero
			}
			if re != e {
				t.Fatalf("entry %#x re-encodes as %#x", e, re)
			}
			if g.extL2 && uint32(bm)&uint32(bm>>subclusters) != 0 {
				t.Fatalf("bitmap %#x accepted with subclusters both allocated and zero", bm)
			}
			n := 1
			if g.extL2 {
				n = subclusters
			}
			for sc := range n {
				k := g.kindOf(e, bm, sc)
				if k == kindData && e&offsetMask == 0 {
					t.Fatalf("entry %#x/%#x: data subcluster %d without host offset", e, bm, sc)
				}
			}
		}
	})
}

// FuzzL1 decodes L1 and refcount table entries.
func FuzzL1(f *testing.F) {
	f.Add(make([]byte, 16), uint8(7), int64(1<<30))
	f.Fuzz(func(t *testing.T, table []byte, clusterBits uint8, fileSize int64) {
		g, _ := fuzzGeometry(clusterBits, false, true, 4)
		for i := 0; i+8 <= len(table); i += 8 {
			e := binary.BigEndian.Uint64(table[i:])
			if g.checkL1Entry(e, fileSize) == nil {
				if re := e&offsetMask | e&flagCopied; re != e {
					t.Fatalf("L1 entry %#x re-encodes as %#x", e, re)
				}
				if off := int64(e & offsetMask); off != 0 && (off >= fileSize || off&(g.clusterSize-1) != 0) {
					t.Fatalf("L1 entry %#x accepted", e)
				}
			}
			if e != 0 && g.checkRefTableEntry(e, fileSize) == nil {
				if off := int64(e & refTableMask); e&^refTableMask != 0 || off >= fileSize || off&(g.clusterSize-1) != 0 {
					t.Fatalf("refcount table entry %#x accepted", e)
				}
			}
		}
	})
}

// FuzzRefcount sets and reads refcount entries of every width: a set value
// reads back, and no other entry changes.
func FuzzRefcount(f *testing.F) {
	f.Add(make([]byte, 512), uint8(4), uint16(3), uint64(1))
	f.Fuzz(func(t *testing.T, block []byte, order uint8, idx uint16, v uint64) {
		order %= 7
		entries := int64(len(block)) * 8 >> order
		if entries == 0 {
			return
		}
		i := int64(idx) % entries
		v &= maxRefcount(uint(order))
		before := make([]uint64, entries)
		for j := range entries {
			before[j] = getRefcount(block, j, uint(order))
			if before[j] > maxRefcount(uint(order)) {
				t.Fatalf("entry %d reads %d, above the %d-bit maximum", j, before[j], 1<<order)
			}
		}
		setRefcount(block, i, uint(order), v)
		for j := range entries {
			got, want := getRefcount(block, j, uint(order)), before[j]
			if j == i {
				want = v
			}
			if got != want {
				t.Fatalf("order %d: entry %d is %d after setting entry %d to %d, want %d", order, j, got, i, v, want)
			}
		}
	})
}
