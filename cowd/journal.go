package cowd

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Journal states.
const (
	journalClean = 0 // closed cleanly; the map pages are complete
	journalOpen  = 1 // in use, or the last user did not close it
)

var journalMagic = [8]byte{'D', 'S', 'C', 'O', 'W', 'J', 'N', 'L'}

const (
	journalHdrFixed = 44 // bytes before the page index list
	maxJournalPages = (pageSize - journalHdrFixed - 4) / 4
)

// journalHeader is the first page of the journal region. A transaction is
// this header followed by Pages page images; DataCRC covers the images, so
// a torn transaction is never replayed.
type journalHeader struct {
	UUID    [16]byte
	Seq     uint64
	State   uint32
	Pages   []uint32 // map page numbers of the images that follow
	DataCRC uint32
}

// journalCapacity is the number of page images one transaction can hold.
func journalCapacity(h *Header) int {
	return min(int(h.JournalLength/pageSize)-1, maxJournalPages)
}

func (j *journalHeader) marshal(dst []byte) error {
	if len(dst) < pageSize || len(j.Pages) > maxJournalPages {
		return fmt.Errorf("%w: journal header with %d pages", ErrFormat, len(j.Pages))
	}
	b := dst[:pageSize]
	clear(b)
	be := binary.BigEndian
	copy(b[0:8], journalMagic[:])
	copy(b[8:24], j.UUID[:])
	be.PutUint64(b[24:], j.Seq)
	be.PutUint32(b[32:], j.State)
	be.PutUint32(b[36:], uint32(len(j.Pages)))
	be.PutUint32(b[40:], j.DataCRC)
	for i, p := range j.Pages {
		be.PutUint32(b[journalHdrFixed+4*i:], p)
	}
	be.PutUint32(b[pageSize-4:], crc32.Checksum(b[:pageSize-4], castagnoli))
	return nil
}

func (j *journalHeader) unmarshal(b []byte) error {
	if len(b) < pageSize {
		return fmt.Errorf("%w: short journal header", ErrFormat)
	}
	b = b[:pageSize]
	if !bytes.Equal(b[0:8], journalMagic[:]) {
		return fmt.Errorf("%w: bad journal magic", ErrFormat)
	}
	be := binary.BigEndian
	if be.Uint32(b[pageSize-4:]) != crc32.Checksum(b[:pageSize-4], castagnoli) {
		return fmt.Errorf("%w: journal header checksum", ErrFormat)
	}
	n := be.Uint32(b[36:])
	if n > maxJournalPages {
		return fmt.Errorf("%w: journal transaction of %d pages", ErrFormat, n)
	}
	d := journalHeader{
		Seq:     be.Uint64(b[24:]),
		State:   be.Uint32(b[32:]),
		DataCRC: be.Uint32(b[40:]),
	}
	if d.State != journalClean && d.State != journalOpen {
		return fmt.Errorf("%w: journal state %d", ErrFormat, d.State)
	}
	copy(d.UUID[:], b[8:24])
	if n > 0 {
		d.Pages = make([]uint32, n)
		for i := range d.Pages {
			d.Pages[i] = be.Uint32(b[journalHdrFixed+4*i:])
		}
	}
	*j = d
	return nil
}

// JournalState describes the journal of an image as found on disk.
type JournalState struct {
	Valid   bool   // the journal header decoded and belongs to this image
	Clean   bool   // the last user closed the image cleanly
	Seq     uint64 // transaction sequence number
	Pending int    // map pages in a committed transaction that replay rewrites
}

// readJournal decodes the journal region. It returns the header and the
// page images of a committed transaction (nil if there is none, or if the
// transaction is torn, which means it was never acknowledged).
func readJournal(r readerAt, h *Header) (journalHeader, [][]byte, JournalState, error) {
	hdrBuf := make([]byte, pageSize)
	if _, err := r.ReadAt(hdrBuf, h.JournalOffset); err != nil {
		return journalHeader{}, nil, JournalState{}, fmt.Errorf("cowd: read journal: %w", err)
	}
	var j journalHeader
	if err := j.unmarshal(hdrBuf); err != nil || j.UUID != h.UUID {
		// A torn header write happens only while the map pages are already
		// durable (see flush.go), so there is nothing to replay.
		return journalHeader{}, nil, JournalState{}, nil
	}
	st := JournalState{Valid: true, Clean: j.State == journalClean, Seq: j.Seq}
	if len(j.Pages) == 0 || len(j.Pages) > journalCapacity(h) {
		return j, nil, st, nil
	}
	data := make([]byte, len(j.Pages)*pageSize)
	if _, err := r.ReadAt(data, h.JournalOffset+pageSize); err != nil {
		return j, nil, st, nil // torn or truncated transaction: not committed
	}
	if crc32.Checksum(data, castagnoli) != j.DataCRC {
		return j, nil, st, nil
	}
	images := make([][]byte, len(j.Pages))
	for i, p := range j.Pages {
		if int64(p) >= h.MapLength/pageSize {
			return j, nil, st, fmt.Errorf("%w: journal names map page %d beyond the map", ErrCorrupt, p)
		}
		images[i] = data[i*pageSize : (i+1)*pageSize]
	}
	st.Pending = len(images)
	return j, images, st, nil
}

type readerAt interface {
	ReadAt(p []byte, off int64) (int, error)
}
