package cowd

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/bits"
	"time"
	"unicode/utf8"
)

// Version is the dscow format version this package reads and writes.
const Version = 1

// Block size limits, in bytes.
const (
	DefaultBlockSize = 64 << 10
	MinBlockSize     = 4 << 10
	MaxBlockSize     = 2 << 20
)

// Layout constants of format version 1 (see docs/dscow.md).
const (
	headerCopySize = 2048 // each of the two header copies
	headerArea     = 2 * headerCopySize
	pageSize       = 4096
	recordSize     = 16
	recordsPerPage = pageSize / recordSize
	journalPages   = 256 // page images per journal transaction, at most
	maxPathLen     = 1024
	maxSize        = 1 << 56 // virtual size limit keeps offsets far from overflow
)

// FeatureCommitting is the incompatible feature bit set while "cowd-img
// commit" merges the overlay into the base. An image with it set must not
// be served.
const FeatureCommitting = 1 << 0

const knownFeatures = FeatureCommitting

var (
	headerMagic = [8]byte{'D', 'S', 'C', 'O', 'W', 0, '\r', '\n'}
	castagnoli  = crc32.MakeTable(crc32.Castagnoli)
)

// BaseIdentity records which base image an overlay belongs to. Size and
// Digest are checked at every open; ModTime is informational because copying
// or touching a file changes it without changing its content, and a block
// device node's mtime says nothing about its data.
type BaseIdentity struct {
	Path      string    // absolute path of the base file or block device
	Size      int64     // size in bytes
	ModTime   time.Time // modification time at create (informational)
	Samples   uint32    // number of sampled ranges
	SampleLen uint32    // bytes per sampled range
	Digest    [32]byte  // SHA-256 over the sampled ranges (see identity.go)
}

// Header is the decoded dscow header.
type Header struct {
	Version       uint32
	Features      uint32 // incompatible features, e.g. FeatureCommitting
	BlockSize     uint32
	Size          int64 // virtual size in bytes, equal to Base.Size
	Blocks        int64 // ceil(Size / BlockSize)
	JournalOffset int64
	JournalLength int64
	MapOffset     int64
	MapLength     int64
	DataOffset    int64
	UUID          [16]byte
	Created       time.Time
	Base          BaseIdentity
}

// newHeader computes the version 1 layout for a base of the given identity.
func newHeader(blockSize uint32, uuid [16]byte, created time.Time, base BaseIdentity) (Header, error) {
	if err := checkBlockSize(int64(blockSize)); err != nil {
		return Header{}, err
	}
	if base.Size <= 0 || base.Size > maxSize {
		return Header{}, fmt.Errorf("%w: base size %d out of range", ErrFormat, base.Size)
	}
	h := Header{
		Version:       Version,
		BlockSize:     blockSize,
		Size:          base.Size,
		Blocks:        (base.Size + int64(blockSize) - 1) / int64(blockSize),
		JournalOffset: headerArea,
		JournalLength: (1 + journalPages) * pageSize,
		UUID:          uuid,
		Created:       created,
		Base:          base,
	}
	h.MapOffset = h.JournalOffset + h.JournalLength
	h.MapLength = mapPages(h.Blocks) * pageSize
	h.DataOffset = roundUp(h.MapOffset+h.MapLength, int64(blockSize))
	return h, h.validate()
}

func checkBlockSize(bs int64) error {
	if bs < MinBlockSize || bs > MaxBlockSize || bits.OnesCount64(uint64(bs)) != 1 {
		return fmt.Errorf("%w: block size %d must be a power of two between %d and %d KiB",
			ErrFormat, bs, MinBlockSize>>10, MaxBlockSize>>10)
	}
	return nil
}

func mapPages(blocks int64) int64 { return (blocks + recordsPerPage - 1) / recordsPerPage }

func roundUp(v, to int64) int64 { return (v + to - 1) / to * to }

// validate checks the geometry; decoders call it on untrusted input.
func (h *Header) validate() error {
	switch {
	case h.Version != Version:
		return fmt.Errorf("%w: version %d (this cowd reads version %d)", ErrVersion, h.Version, Version)
	case h.Features&^knownFeatures != 0:
		return fmt.Errorf("%w: unknown incompatible features %#x", ErrVersion, h.Features&^knownFeatures)
	}
	if err := checkBlockSize(int64(h.BlockSize)); err != nil {
		return err
	}
	bs := int64(h.BlockSize)
	switch {
	case h.Size <= 0 || h.Size > maxSize:
		return fmt.Errorf("%w: size %d out of range", ErrFormat, h.Size)
	case h.Blocks != (h.Size+bs-1)/bs:
		return fmt.Errorf("%w: %d blocks do not cover %d bytes", ErrFormat, h.Blocks, h.Size)
	case h.Base.Size != h.Size:
		return fmt.Errorf("%w: base size %d differs from virtual size %d", ErrFormat, h.Base.Size, h.Size)
	case h.JournalOffset < headerArea || h.JournalOffset%pageSize != 0 || h.JournalOffset > maxSize:
		return fmt.Errorf("%w: journal offset %d", ErrFormat, h.JournalOffset)
	case h.JournalLength < 2*pageSize || h.JournalLength%pageSize != 0 || h.JournalLength > 64<<20:
		return fmt.Errorf("%w: journal length %d", ErrFormat, h.JournalLength)
	case h.MapOffset < h.JournalOffset+h.JournalLength || h.MapOffset%pageSize != 0 || h.MapOffset > maxSize:
		return fmt.Errorf("%w: map offset %d overlaps the journal or is misaligned", ErrFormat, h.MapOffset)
	case h.MapLength < mapPages(h.Blocks)*pageSize || h.MapLength%pageSize != 0 || h.MapLength > maxSize:
		return fmt.Errorf("%w: map length %d too small for %d blocks", ErrFormat, h.MapLength, h.Blocks)
	case h.DataOffset < h.MapOffset+h.MapLength || h.DataOffset%bs != 0 || h.DataOffset > maxSize:
		return fmt.Errorf("%w: data offset %d overlaps the map or is misaligned", ErrFormat, h.DataOffset)
	case len(h.Base.Path) == 0 || len(h.Base.Path) > maxPathLen || !utf8.ValidString(h.Base.Path) ||
		bytes.IndexByte([]byte(h.Base.Path), 0) >= 0:
		return fmt.Errorf("%w: base path must be 1 to %d bytes of UTF-8 without NUL", ErrFormat, maxPathLen)
	case h.Base.Samples == 0 || h.Base.SampleLen == 0:
		return fmt.Errorf("%w: base identity has no samples", ErrFormat)
	}
	return nil
}

// MarshalBinary encodes one header copy (2048 bytes, big-endian, CRC-32C in
// the last four bytes).
func (h *Header) MarshalBinary() ([]byte, error) {
	if err := h.validate(); err != nil {
		return nil, err
	}
	b := make([]byte, headerCopySize)
	be := binary.BigEndian
	copy(b[0:8], headerMagic[:])
	be.PutUint32(b[8:], h.Version)
	be.PutUint32(b[12:], headerCopySize)
	be.PutUint32(b[16:], h.Features)
	be.PutUint32(b[20:], h.BlockSize)
	be.PutUint64(b[24:], uint64(h.Size))
	be.PutUint64(b[32:], uint64(h.Blocks))
	be.PutUint64(b[40:], uint64(h.JournalOffset))
	be.PutUint64(b[48:], uint64(h.JournalLength))
	be.PutUint64(b[56:], uint64(h.MapOffset))
	be.PutUint64(b[64:], uint64(h.MapLength))
	be.PutUint64(b[72:], uint64(h.DataOffset))
	copy(b[80:96], h.UUID[:])
	be.PutUint64(b[96:], uint64(timeNs(h.Created)))
	be.PutUint64(b[104:], uint64(h.Base.Size))
	be.PutUint64(b[112:], uint64(timeNs(h.Base.ModTime)))
	be.PutUint32(b[120:], h.Base.Samples)
	be.PutUint32(b[124:], h.Base.SampleLen)
	copy(b[128:160], h.Base.Digest[:])
	be.PutUint16(b[160:], uint16(len(h.Base.Path)))
	copy(b[162:], h.Base.Path)
	be.PutUint32(b[headerCopySize-4:], crc32.Checksum(b[:headerCopySize-4], castagnoli))
	return b, nil
}

// UnmarshalBinary decodes and validates one header copy.
func (h *Header) UnmarshalBinary(b []byte) error {
	if len(b) < headerCopySize {
		return fmt.Errorf("%w: header is %d bytes, want %d", ErrFormat, len(b), headerCopySize)
	}
	b = b[:headerCopySize]
	if !bytes.Equal(b[0:8], headerMagic[:]) {
		return fmt.Errorf("%w: not a dscow image (bad magic %q)", ErrFormat, b[0:8])
	}
	be := binary.BigEndian
	if got, want := be.Uint32(b[headerCopySize-4:]), crc32.Checksum(b[:headerCopySize-4], castagnoli); got != want {
		return fmt.Errorf("%w: header checksum %#08x, computed %#08x", ErrFormat, got, want)
	}
	if n := be.Uint32(b[12:]); n != headerCopySize {
		return fmt.Errorf("%w: header length %d", ErrFormat, n)
	}
	pathLen := int(be.Uint16(b[160:]))
	if pathLen > maxPathLen {
		return fmt.Errorf("%w: base path length %d", ErrFormat, pathLen)
	}
	for _, c := range b[162+pathLen : headerCopySize-4] {
		if c != 0 {
			return fmt.Errorf("%w: non-zero bytes after the base path", ErrFormat)
		}
	}
	d := Header{
		Version:       be.Uint32(b[8:]),
		Features:      be.Uint32(b[16:]),
		BlockSize:     be.Uint32(b[20:]),
		Size:          int64(be.Uint64(b[24:])),
		Blocks:        int64(be.Uint64(b[32:])),
		JournalOffset: int64(be.Uint64(b[40:])),
		JournalLength: int64(be.Uint64(b[48:])),
		MapOffset:     int64(be.Uint64(b[56:])),
		MapLength:     int64(be.Uint64(b[64:])),
		DataOffset:    int64(be.Uint64(b[72:])),
		Created:       nsTime(int64(be.Uint64(b[96:]))),
		Base: BaseIdentity{
			Size:      int64(be.Uint64(b[104:])),
			ModTime:   nsTime(int64(be.Uint64(b[112:]))),
			Samples:   be.Uint32(b[120:]),
			SampleLen: be.Uint32(b[124:]),
			Path:      string(b[162 : 162+pathLen]),
		},
	}
	copy(d.UUID[:], b[80:96])
	copy(d.Base.Digest[:], b[128:160])
	if err := d.validate(); err != nil {
		return err
	}
	*h = d
	return nil
}

// decodeHeaderArea picks the valid header copy: the primary if it decodes,
// else the secondary. Writers update the secondary first (see writeHeader),
// so whichever copy survives a torn write is a complete header.
func decodeHeaderArea(b []byte) (Header, error) {
	var h Header
	err := h.UnmarshalBinary(b)
	if err == nil || len(b) < headerArea {
		return h, err
	}
	var h2 Header
	if err2 := h2.UnmarshalBinary(b[headerCopySize:]); err2 == nil {
		return h2, nil
	}
	return h, err
}

func timeNs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func nsTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
