package qcow2

import (
	"encoding/binary"
	"math/bits"
)

// Table entry bits.
const (
	offsetMask     = 0x00fffffffffffe00 // L1 and standard L2 entries: bits 9-55
	refTableMask   = 0xfffffffffffffe00 // refcount table entries: bits 9-63
	flagCopied     = 1 << 63            // refcount is exactly 1: writable in place
	flagCompressed = 1 << 62
	flagZero       = 1 << 0 // version 3, standard L2 entries only
	l1Reserved     = ^uint64(offsetMask | flagCopied)

	subclusters = 32 // per cluster with extended L2 entries
	allAlloc    = 1<<subclusters - 1
	allZero     = allAlloc << subclusters
)

// kind is what a cluster (or subcluster) of a layer holds.
type kind uint8

const (
	kindUnalloc    kind = iota // not in this layer: read the backing file
	kindZero                   // reads as zeroes
	kindData                   // at a host offset
	kindCompressed             // a compressed cluster
)

// geometry is the layout derived from a header, computed once.
type geometry struct {
	size        int64 // virtual size
	clusterBits uint
	clusterSize int64
	l2Bits      uint // log2 of L2 entries per table
	entryShift  uint // log2 of bytes per L2 entry (3, or 4 with extended L2)
	extL2       bool
	v3          bool
	scBits      uint // log2 of the subcluster size (clusterBits without extended L2)
	refOrder    uint
	rbBits      uint // log2 of refcount entries per refcount block
	csizeShift  uint // compressed descriptor: sector count position
	csizeMask   uint64
	coffMask    uint64
}

func newGeometry(h *Header) geometry {
	g := geometry{
		size:        int64(h.Size),
		clusterBits: uint(h.ClusterBits),
		clusterSize: 1 << h.ClusterBits,
		extL2:       h.ExtendedL2(),
		v3:          h.Version >= 3,
		refOrder:    uint(h.RefcountOrder),
	}
	g.entryShift = 3
	g.scBits = g.clusterBits
	if g.extL2 {
		g.entryShift = 4
		g.scBits = g.clusterBits - 5
	}
	g.l2Bits = g.clusterBits - g.entryShift
	g.rbBits = g.clusterBits + 3 - g.refOrder
	g.csizeShift = 62 - (g.clusterBits - 8)
	g.csizeMask = 1<<(g.clusterBits-8) - 1
	g.coffMask = 1<<g.csizeShift - 1
	return g
}

func (g *geometry) clusters() int64  { return (g.size + g.clusterSize - 1) >> g.clusterBits }
func (g *geometry) l2Entries() int64 { return 1 << g.l2Bits }
func (g *geometry) l1Index(c int64) int64 {
	return c >> g.l2Bits
}
func (g *geometry) l2Index(c int64) int64 { return c & (1<<g.l2Bits - 1) }
func (g *geometry) scSize() int64         { return 1 << g.scBits }

// clusterLen is the number of bytes of guest cluster c inside the disk.
func (g *geometry) clusterLen(c int64) int64 { return min(g.clusterSize, g.size-c<<g.clusterBits) }

// entry reads L2 entry i of a table; bm is 0 without extended L2.
func (g *geometry) entry(t []byte, i int64) (e, bm uint64) {
	o := i << g.entryShift
	e = binary.BigEndian.Uint64(t[o:])
	if g.extL2 {
		bm = binary.BigEndian.Uint64(t[o+8:])
	}
	return e, bm
}

// setEntry writes L2 entry i of a table.
func (g *geometry) setEntry(t []byte, i int64, e, bm uint64) {
	o := i << g.entryShift
	binary.BigEndian.PutUint64(t[o:], e)
	if g.extL2 {
		binary.BigEndian.PutUint64(t[o+8:], bm)
	}
}

// compressedRange returns the host byte range a compressed descriptor
// covers (what its refcounts count).
func (g *geometry) compressedRange(e uint64) (off, n int64) {
	off = int64(e & g.coffMask)
	sectors := int64((e>>g.csizeShift)&g.csizeMask) + 1
	return off, sectors*512 - off&511
}

// kindOf classifies subcluster sc of an entry (sc is 0 without extended L2).
func (g *geometry) kindOf(e, bm uint64, sc int) kind {
	switch {
	case e&flagCompressed != 0:
		return kindCompressed
	case g.extL2:
		switch {
		case bm&(1<<sc) != 0:
			return kindData
		case bm&(1<<(sc+subclusters)) != 0:
			return kindZero
		}
		return kindUnalloc
	case g.v3 && e&flagZero != 0:
		return kindZero
	case e&offsetMask != 0:
		return kindData
	}
	return kindUnalloc
}

// checkL2Entry validates one L2 entry against the geometry and the file
// size; the error names what is wrong.
func (g *geometry) checkL2Entry(e, bm uint64, fileSize int64) error {
	if e&flagCompressed != 0 {
		off, _ := g.compressedRange(e)
		switch {
		case e&flagCopied != 0:
			return corruptf("compressed cluster with the COPIED flag (entry %#x)", e)
		case g.extL2 && bm != 0:
			return corruptf("compressed cluster with a subcluster bitmap %#x", bm)
		case off == 0 || off >= fileSize:
			return corruptf("compressed cluster at %#x outside the file (%d bytes)", off, fileSize)
		}
		return nil
	}
	reserved := ^uint64(offsetMask | flagCopied)
	if g.v3 && !g.extL2 {
		reserved &^= flagZero
	}
	off := int64(e & offsetMask)
	switch {
	case e&reserved != 0:
		return corruptf("L2 entry %#x has reserved bits set", e)
	case off&(g.clusterSize-1) != 0:
		return corruptf("L2 entry points to unaligned offset %#x", off)
	case off != 0 && off >= fileSize:
		return corruptf("L2 entry points to %#x, past the end of the file (%d bytes)", off, fileSize)
	}
	if g.extL2 {
		alloc, zero := uint32(bm), uint32(bm>>subclusters)
		switch {
		case alloc&zero != 0:
			return corruptf("subclusters %#x both allocated and zero", alloc&zero)
		case off == 0 && alloc != 0:
			return corruptf("allocated subclusters %#x in a cluster without host offset", alloc)
		}
	}
	return nil
}

// checkL1Entry validates an L1 entry.
func (g *geometry) checkL1Entry(e uint64, fileSize int64) error {
	off := int64(e & offsetMask)
	switch {
	case e&l1Reserved != 0:
		return corruptf("L1 entry %#x has reserved bits set", e)
	case off&(g.clusterSize-1) != 0:
		return corruptf("L1 entry points to unaligned offset %#x", off)
	case off != 0 && off >= fileSize:
		return corruptf("L1 entry points to %#x, past the end of the file (%d bytes)", off, fileSize)
	}
	return nil
}

// checkRefTableEntry validates a refcount table entry.
func (g *geometry) checkRefTableEntry(e uint64, fileSize int64) error {
	off := int64(e & refTableMask)
	switch {
	case e&^refTableMask != 0:
		return corruptf("refcount table entry %#x has reserved bits set", e)
	case off&(g.clusterSize-1) != 0:
		return corruptf("refcount block at unaligned offset %#x", off)
	case off >= fileSize:
		return corruptf("refcount block at %#x, past the end of the file (%d bytes)", off, fileSize)
	}
	return nil
}

// maxRefcount is the largest refcount an entry of the given order holds.
func maxRefcount(order uint) uint64 {
	if order == 6 {
		return ^uint64(0)
	}
	return 1<<(1<<order) - 1
}

// getRefcount reads entry i of a refcount block. Sub-byte entries are
// packed from the least significant bit, as QEMU does.
func getRefcount(b []byte, i int64, order uint) uint64 {
	switch order {
	case 0, 1, 2:
		w := uint(1) << order
		per := int64(8 / w)
		return uint64(b[i/per]>>(uint(i%per)*w)) & (1<<w - 1)
	case 3:
		return uint64(b[i])
	case 4:
		return uint64(binary.BigEndian.Uint16(b[i*2:]))
	case 5:
		return uint64(binary.BigEndian.Uint32(b[i*4:]))
	}
	return binary.BigEndian.Uint64(b[i*8:])
}

// setRefcount writes entry i of a refcount block; v must fit the order.
func setRefcount(b []byte, i int64, order uint, v uint64) {
	switch order {
	case 0, 1, 2:
		w := uint(1) << order
		per := int64(8 / w)
		shift := uint(i%per) * w
		mask := byte(1<<w-1) << shift
		b[i/per] = b[i/per]&^mask | byte(v<<shift)&mask
	case 3:
		b[i] = byte(v)
	case 4:
		binary.BigEndian.PutUint16(b[i*2:], uint16(v))
	case 5:
		binary.BigEndian.PutUint32(b[i*4:], uint32(v))
	default:
		binary.BigEndian.PutUint64(b[i*8:], v)
	}
}

// subclusterMask returns the bitmap bits of the subclusters [first, last].
func subclusterMask(first, last int) uint64 {
	return (uint64(1)<<(last+1) - 1) &^ (uint64(1)<<first - 1)
}

func log2(v int64) uint { return uint(bits.TrailingZeros64(uint64(v))) }
