package cowd

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Block states as kept in memory: a block is in the base (state 0), zero
// (reads as zeroes, owns no data block), or mapped to data slot
// state>>stateShift of the data area.
const (
	stateMapped = 1 << 0
	stateZero   = 1 << 1
	stateShift  = 2
	stateBase   = 0
)

// Record flags on disk (map entries).
const (
	recMapped = 1 << 0
	recZero   = 1 << 1
)

// Record is one decoded map entry.
type Record struct {
	Offset uint64 // byte offset of the block's data in the image; 0 unless Mapped
	Flags  uint32 // recMapped or recZero; neither means "still in the base"
}

// encodeRecord writes the 16-byte entry for block into dst. The checksum
// covers the image UUID and the block number, so an entry copied from
// another image or written to the wrong place is detected.
func encodeRecord(dst []byte, uuid *[16]byte, block int64, r Record) {
	be := binary.BigEndian
	be.PutUint64(dst[0:], r.Offset)
	be.PutUint32(dst[8:], r.Flags)
	be.PutUint32(dst[12:], recordCRC(uuid, block, dst[:12]))
}

func recordCRC(uuid *[16]byte, block int64, body []byte) uint32 {
	var bb [8]byte
	binary.BigEndian.PutUint64(bb[:], uint64(block))
	c := crc32.Update(0, castagnoli, uuid[:])
	c = crc32.Update(c, castagnoli, bb[:])
	return crc32.Update(c, castagnoli, body[:12])
}

// decodeRecord checks and decodes the entry of block. It validates the
// checksum and the flags, and that a mapped offset is a block-aligned offset
// inside the data area (it does not know the file size).
func decodeRecord(src []byte, uuid *[16]byte, block int64, h *Header) (Record, error) {
	if len(src) < recordSize {
		return Record{}, fmt.Errorf("%w: short map entry", ErrFormat)
	}
	be := binary.BigEndian
	r := Record{Offset: be.Uint64(src[0:]), Flags: be.Uint32(src[8:])}
	if got, want := be.Uint32(src[12:]), recordCRC(uuid, block, src); got != want {
		return r, fmt.Errorf("%w: map entry of block %d: checksum %#08x, computed %#08x", ErrFormat, block, got, want)
	}
	switch r.Flags {
	case 0, recZero:
		if r.Offset != 0 {
			return r, fmt.Errorf("%w: map entry of block %d: offset %d on an unmapped block", ErrFormat, block, r.Offset)
		}
	case recMapped:
		bs := uint64(h.BlockSize)
		if r.Offset < uint64(h.DataOffset) || r.Offset > maxSize || (r.Offset-uint64(h.DataOffset))%bs != 0 {
			return r, fmt.Errorf("%w: map entry of block %d: data offset %d outside the data area or misaligned",
				ErrFormat, block, r.Offset)
		}
	default:
		return r, fmt.Errorf("%w: map entry of block %d: flags %#x", ErrFormat, block, r.Flags)
	}
	return r, nil
}

// recordOf converts an in-memory state to its map entry.
func recordOf(h *Header, st uint64) Record {
	switch {
	case st&stateMapped != 0:
		return Record{Offset: uint64(h.DataOffset) + (st>>stateShift)*uint64(h.BlockSize), Flags: recMapped}
	case st&stateZero != 0:
		return Record{Flags: recZero}
	}
	return Record{}
}

// stateOf converts a validated map entry to its in-memory state.
func stateOf(h *Header, r Record) uint64 {
	switch r.Flags {
	case recMapped:
		return (r.Offset-uint64(h.DataOffset))/uint64(h.BlockSize)<<stateShift | stateMapped
	case recZero:
		return stateZero
	}
	return stateBase
}

// encodePage fills one 4 KiB map page from the states of its blocks; slots
// past the last block stay zero.
func encodePage(dst []byte, h *Header, page int64, states []uint64) {
	first := page * recordsPerPage
	for i := range recordsPerPage {
		b := first + int64(i)
		rec := dst[i*recordSize : (i+1)*recordSize]
		if b >= h.Blocks {
			clear(rec)
			continue
		}
		encodeRecord(rec, &h.UUID, b, recordOf(h, states[b]))
	}
}
