package qcow2

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// Magic is the first four bytes of every qcow2 image ("QFI\xfb").
const Magic = 0x514649fb

// Incompatible feature bits (header offset 72). An image with a bit set
// that this package does not know is refused.
const (
	IncompatDirty       = 1 << 0 // refcounts may be stale (lazy refcounts); rebuilt at open
	IncompatCorrupt     = 1 << 1 // QEMU found corruption; never written
	IncompatDataFile    = 1 << 2 // guest data lives in an external file (refused)
	IncompatCompression = 1 << 3 // the compression type field is valid
	IncompatExtendedL2  = 1 << 4 // 128-bit L2 entries with 32 subclusters

	knownIncompat = IncompatDirty | IncompatCorrupt | IncompatDataFile | IncompatCompression | IncompatExtendedL2
)

// Compatible and autoclear feature bits.
const (
	CompatLazyRefcounts = 1 << 0 // refcounts may be updated lazily, with the dirty bit set

	AutoclearBitmaps     = 1 << 0 // persistent bitmaps are consistent
	AutoclearDataFileRaw = 1 << 1 // the external data file is a raw image
)

// Header extension types.
const (
	extEnd           = 0
	extBackingFormat = 0xe2792aca
	extFeatureTable  = 0x6803f857
	extBitmaps       = 0x23852875
	extCrypto        = 0x0537be77
	extDataFile      = 0x44415441
)

// Limits, the same as QEMU's.
const (
	minClusterBits     = 9
	maxClusterBits     = 21
	maxBackingName     = 1023
	maxL1Bytes         = 32 << 20 // QCOW_MAX_L1_SIZE
	maxRefTableBytes   = 8 << 20  // QCOW_MAX_REFTABLE_SIZE
	maxVirtualSize     = 1 << 61  // keeps every offset computation inside int64
	maxSnapshots       = 65536
	v2HeaderLength     = 72
	v3HeaderLength     = 104 // without the compression type byte
	defaultHeaderBytes = 112 // what QEMU writes: 104 + compression type + padding
	featureEntrySize   = 48
)

// Compression types (header byte 104, valid with [IncompatCompression]).
const (
	CompressionZlib = 0 // raw deflate, as QEMU writes it
	CompressionZstd = 1
)

// Header is a decoded qcow2 header (versions 2 and 3), including its
// header extensions and the backing file name.
type Header struct {
	Version               uint32
	BackingFileOffset     uint64
	BackingFileSize       uint32
	ClusterBits           uint32
	Size                  uint64 // virtual size in bytes
	CryptMethod           uint32 // 0 none, 1 AES, 2 LUKS
	L1Size                uint32 // entries
	L1TableOffset         uint64
	RefcountTableOffset   uint64
	RefcountTableClusters uint32
	NbSnapshots           uint32
	SnapshotsOffset       uint64
	IncompatibleFeatures  uint64 // version 3
	CompatibleFeatures    uint64 // version 3
	AutoclearFeatures     uint64 // version 3
	RefcountOrder         uint32 // refcount width is 1<<RefcountOrder bits; 4 in version 2
	HeaderLength          uint32 // 72 in version 2
	CompressionType       uint8

	BackingFile   string // as stored: relative names resolve against the image's directory
	BackingFormat string // from the backing format extension; "" if absent
	// Extensions holds the header extensions other than the backing
	// format, in file order.
	Extensions []Extension
}

// Extension is one header extension.
type Extension struct {
	Type uint32
	Data []byte
}

// ClusterSize returns the cluster size in bytes.
func (h *Header) ClusterSize() int64 { return 1 << h.ClusterBits }

// ExtendedL2 reports whether L2 entries are 128 bits with subclusters.
func (h *Header) ExtendedL2() bool { return h.IncompatibleFeatures&IncompatExtendedL2 != 0 }

// RefcountBits returns the width of a refcount entry.
func (h *Header) RefcountBits() int { return 1 << h.RefcountOrder }

// extension returns the data of the first extension of the given type.
func (h *Header) extension(typ uint32) ([]byte, bool) {
	for _, e := range h.Extensions {
		if e.Type == typ {
			return e.Data, true
		}
	}
	return nil, false
}

// DataFile returns the external data file name, if the image has one.
func (h *Header) DataFile() string {
	b, _ := h.extension(extDataFile)
	return string(b)
}

// FeatureName returns the name the image's feature table gives a feature
// bit (kind 0 incompatible, 1 compatible, 2 autoclear), or "".
func (h *Header) FeatureName(kind, bit uint8) string {
	b, ok := h.extension(extFeatureTable)
	if !ok {
		return ""
	}
	for ; len(b) >= featureEntrySize; b = b[featureEntrySize:] {
		if b[0] == kind && b[1] == bit {
			name := b[2:featureEntrySize]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			return string(name)
		}
	}
	return ""
}

// ParseHeader decodes the header from the start of an image (its first
// cluster, or as much of it as the file holds) and validates every field
// that does not need the rest of the file. It never panics on bad input.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	be := binary.BigEndian
	if len(b) < 8 {
		return h, fmt.Errorf("%w: %d bytes is too short for a header", ErrFormat, len(b))
	}
	if be.Uint32(b) != Magic {
		return h, fmt.Errorf("%w: not a qcow2 image (magic %#08x)", ErrFormat, be.Uint32(b))
	}
	h.Version = be.Uint32(b[4:])
	switch h.Version {
	case 2, 3:
	case 1:
		return h, fmt.Errorf("%w: qcow version 1 (only qcow2 versions 2 and 3)", ErrUnsupported)
	default:
		return h, fmt.Errorf("%w: qcow2 version %d", ErrUnsupported, h.Version)
	}
	if len(b) < v2HeaderLength {
		return h, fmt.Errorf("%w: header truncated at %d bytes", ErrFormat, len(b))
	}
	h.BackingFileOffset = be.Uint64(b[8:])
	h.BackingFileSize = be.Uint32(b[16:])
	h.ClusterBits = be.Uint32(b[20:])
	h.Size = be.Uint64(b[24:])
	h.CryptMethod = be.Uint32(b[32:])
	h.L1Size = be.Uint32(b[36:])
	h.L1TableOffset = be.Uint64(b[40:])
	h.RefcountTableOffset = be.Uint64(b[48:])
	h.RefcountTableClusters = be.Uint32(b[56:])
	h.NbSnapshots = be.Uint32(b[60:])
	h.SnapshotsOffset = be.Uint64(b[64:])
	h.RefcountOrder = 4
	h.HeaderLength = v2HeaderLength
	if h.ClusterBits < minClusterBits || h.ClusterBits > maxClusterBits {
		return h, fmt.Errorf("%w: cluster bits %d (want %d to %d)", ErrFormat, h.ClusterBits, minClusterBits, maxClusterBits)
	}
	cs := uint64(1) << h.ClusterBits
	if uint64(len(b)) > cs {
		b = b[:cs] // everything below lives in the first cluster
	}
	if h.Version == 3 {
		if len(b) < v3HeaderLength {
			return h, fmt.Errorf("%w: version 3 header truncated at %d bytes", ErrFormat, len(b))
		}
		h.IncompatibleFeatures = be.Uint64(b[72:])
		h.CompatibleFeatures = be.Uint64(b[80:])
		h.AutoclearFeatures = be.Uint64(b[88:])
		h.RefcountOrder = be.Uint32(b[96:])
		h.HeaderLength = be.Uint32(b[100:])
		switch {
		case h.HeaderLength < v3HeaderLength || h.HeaderLength%8 != 0:
			return h, fmt.Errorf("%w: header length %d (want a multiple of 8, at least %d)", ErrFormat, h.HeaderLength, v3HeaderLength)
		case uint64(h.HeaderLength) > uint64(len(b)):
			return h, fmt.Errorf("%w: header length %d beyond the %d bytes read", ErrFormat, h.HeaderLength, len(b))
		case h.RefcountOrder > 6:
			return h, fmt.Errorf("%w: refcount order %d (at most 6)", ErrFormat, h.RefcountOrder)
		}
		if h.HeaderLength > v3HeaderLength {
			h.CompressionType = b[104]
		}
		if h.IncompatibleFeatures&IncompatCompression == 0 && h.CompressionType != 0 {
			return h, fmt.Errorf("%w: compression type %d without the compression type feature bit", ErrFormat, h.CompressionType)
		}
		if h.IncompatibleFeatures&IncompatCompression != 0 && h.HeaderLength <= v3HeaderLength {
			return h, fmt.Errorf("%w: compression type feature bit in a %d-byte header", ErrFormat, h.HeaderLength)
		}
		if h.ExtendedL2() && h.ClusterBits < 14 {
			return h, fmt.Errorf("%w: extended L2 entries need clusters of 16 KiB or more", ErrFormat)
		}
	}
	if err := h.parseExtensions(b); err != nil {
		return h, err
	}
	if err := h.parseBackingName(b); err != nil {
		return h, err
	}
	return h, h.validateGeometry()
}

func (h *Header) parseExtensions(b []byte) error {
	be := binary.BigEndian
	off := uint64(h.HeaderLength)
	end := uint64(len(b))
	if h.BackingFileOffset != 0 && h.BackingFileOffset < end {
		end = h.BackingFileOffset // extensions end before the backing file name
	}
	for {
		if off+8 > end {
			// QEMU stops at the end of the cluster or the backing name too.
			return nil
		}
		typ, n := be.Uint32(b[off:]), uint64(be.Uint32(b[off+4:]))
		off += 8
		if typ == extEnd {
			return nil
		}
		if n > end-off {
			return fmt.Errorf("%w: header extension %#x of %d bytes overruns the header cluster", ErrFormat, typ, n)
		}
		data := bytes.Clone(b[off : off+n])
		off += (n + 7) &^ 7
		switch typ {
		case extBackingFormat:
			if !validName(data) {
				return fmt.Errorf("%w: invalid backing format name", ErrFormat)
			}
			h.BackingFormat = string(data)
		case extDataFile:
			if !validName(data) {
				return fmt.Errorf("%w: invalid external data file name", ErrFormat)
			}
			h.Extensions = append(h.Extensions, Extension{Type: typ, Data: data})
		default:
			h.Extensions = append(h.Extensions, Extension{Type: typ, Data: data})
		}
	}
}

func validName(b []byte) bool {
	return utf8.Valid(b) && bytes.IndexByte(b, 0) < 0
}

func (h *Header) parseBackingName(b []byte) error {
	if h.BackingFileOffset == 0 {
		if h.BackingFileSize != 0 {
			return fmt.Errorf("%w: backing file size %d without an offset", ErrFormat, h.BackingFileSize)
		}
		return nil
	}
	switch {
	case h.BackingFileSize == 0 || h.BackingFileSize > maxBackingName:
		return fmt.Errorf("%w: backing file name length %d (want 1 to %d)", ErrFormat, h.BackingFileSize, maxBackingName)
	case h.BackingFileOffset < uint64(h.HeaderLength) ||
		h.BackingFileOffset > uint64(len(b)) || uint64(h.BackingFileSize) > uint64(len(b))-h.BackingFileOffset:
		return fmt.Errorf("%w: backing file name at %d (%d bytes) outside the header cluster", ErrFormat, h.BackingFileOffset, h.BackingFileSize)
	}
	name := b[h.BackingFileOffset : h.BackingFileOffset+uint64(h.BackingFileSize)]
	if !validName(name) {
		return fmt.Errorf("%w: backing file name is not UTF-8 without NUL", ErrFormat)
	}
	h.BackingFile = string(name)
	return nil
}

// validateGeometry checks sizes and table placement.
func (h *Header) validateGeometry() error {
	cs := uint64(1) << h.ClusterBits
	aligned := func(v uint64) bool { return v&(cs-1) == 0 }
	entry := uint64(8)
	if h.ExtendedL2() {
		entry = 16
	}
	perL1 := cs / entry * cs // guest bytes per L1 entry
	switch {
	case h.Size > maxVirtualSize:
		return fmt.Errorf("%w: virtual size %d too large", ErrFormat, h.Size)
	case uint64(h.L1Size)*8 > maxL1Bytes:
		return fmt.Errorf("%w: L1 table of %d entries too large", ErrFormat, h.L1Size)
	case uint64(h.L1Size) < (h.Size+perL1-1)/perL1:
		return fmt.Errorf("%w: L1 table of %d entries too small for %d bytes", ErrFormat, h.L1Size, h.Size)
	case h.L1Size > 0 && (h.L1TableOffset == 0 || !aligned(h.L1TableOffset) || h.L1TableOffset > maxVirtualSize):
		return fmt.Errorf("%w: L1 table offset %#x", ErrFormat, h.L1TableOffset)
	case h.RefcountTableClusters == 0 || uint64(h.RefcountTableClusters) > maxRefTableBytes/cs:
		return fmt.Errorf("%w: refcount table of %d clusters", ErrFormat, h.RefcountTableClusters)
	case h.RefcountTableOffset == 0 || !aligned(h.RefcountTableOffset) || h.RefcountTableOffset > maxVirtualSize:
		return fmt.Errorf("%w: refcount table offset %#x", ErrFormat, h.RefcountTableOffset)
	case h.NbSnapshots > maxSnapshots:
		return fmt.Errorf("%w: %d snapshots", ErrFormat, h.NbSnapshots)
	case h.NbSnapshots > 0 && (!aligned(h.SnapshotsOffset) || h.SnapshotsOffset == 0 || h.SnapshotsOffset > maxVirtualSize):
		return fmt.Errorf("%w: snapshot table offset %#x", ErrFormat, h.SnapshotsOffset)
	}
	return nil
}

// MarshalBinary encodes the header, the backing format extension (if
// BackingFormat is set), the other extensions, the end marker and the
// backing file name, which it places right after them (setting
// BackingFileOffset and BackingFileSize). The result must fit in one
// cluster.
func (h *Header) MarshalBinary() ([]byte, error) {
	n := h.HeaderLength
	if h.Version == 2 {
		n = v2HeaderLength
	}
	b := make([]byte, n, 4096)
	be := binary.BigEndian
	be.PutUint32(b[0:], Magic)
	be.PutUint32(b[4:], h.Version)
	be.PutUint32(b[20:], h.ClusterBits)
	be.PutUint64(b[24:], h.Size)
	be.PutUint32(b[32:], h.CryptMethod)
	be.PutUint32(b[36:], h.L1Size)
	be.PutUint64(b[40:], h.L1TableOffset)
	be.PutUint64(b[48:], h.RefcountTableOffset)
	be.PutUint32(b[56:], h.RefcountTableClusters)
	be.PutUint32(b[60:], h.NbSnapshots)
	be.PutUint64(b[64:], h.SnapshotsOffset)
	if h.Version == 3 {
		if n < v3HeaderLength {
			return nil, fmt.Errorf("%w: header length %d", ErrFormat, n)
		}
		be.PutUint64(b[72:], h.IncompatibleFeatures)
		be.PutUint64(b[80:], h.CompatibleFeatures)
		be.PutUint64(b[88:], h.AutoclearFeatures)
		be.PutUint32(b[96:], h.RefcountOrder)
		be.PutUint32(b[100:], n)
		if n > v3HeaderLength {
			b[104] = h.CompressionType
		}
	}
	putExt := func(typ uint32, data []byte) {
		var hdr [8]byte
		be.PutUint32(hdr[0:], typ)
		be.PutUint32(hdr[4:], uint32(len(data)))
		b = append(b, hdr[:]...)
		b = append(b, data...)
		b = append(b, make([]byte, (8-len(data)%8)%8)...)
	}
	if h.BackingFormat != "" {
		putExt(extBackingFormat, []byte(h.BackingFormat))
	}
	for _, e := range h.Extensions {
		if e.Type == extEnd || e.Type == extBackingFormat {
			continue
		}
		putExt(e.Type, e.Data)
	}
	putExt(extEnd, nil)
	h.BackingFileOffset, h.BackingFileSize = 0, 0
	if h.BackingFile != "" {
		if len(h.BackingFile) > maxBackingName {
			return nil, fmt.Errorf("%w: backing file name longer than %d bytes", ErrFormat, maxBackingName)
		}
		h.BackingFileOffset, h.BackingFileSize = uint64(len(b)), uint32(len(h.BackingFile))
		b = append(b, h.BackingFile...)
	}
	be.PutUint64(b[8:], h.BackingFileOffset)
	be.PutUint32(b[16:], h.BackingFileSize)
	if h.ClusterBits < minClusterBits || h.ClusterBits > maxClusterBits || len(b) > 1<<h.ClusterBits {
		return nil, fmt.Errorf("%w: header of %d bytes does not fit a %d-bit cluster", ErrFormat, len(b), h.ClusterBits)
	}
	return b, nil
}

// featureTable is the feature name table QEMU writes into new images.
func featureTable() []byte {
	names := []struct {
		kind, bit uint8
		name      string
	}{
		{0, 0, "dirty bit"}, {0, 1, "corrupt bit"}, {0, 2, "external data file"},
		{0, 3, "compression type"}, {0, 4, "extended L2 entries"},
		{1, 0, "lazy refcounts"}, {2, 0, "bitmaps"}, {2, 1, "raw external data"},
	}
	b := make([]byte, len(names)*featureEntrySize)
	for i, n := range names {
		e := b[i*featureEntrySize:]
		e[0], e[1] = n.kind, n.bit
		copy(e[2:featureEntrySize], n.name)
	}
	return b
}
