package cowd

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// mapChunkPages is how many map pages are read or written per system call.
const mapChunkPages = 256

// readHeader reads and decodes the header area of an image file.
func readHeader(f *os.File) (Header, error) {
	b := make([]byte, headerArea)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return Header{}, fmt.Errorf("cowd: read header of %s: %w", f.Name(), err)
	}
	h, err := decodeHeaderArea(b[:n])
	if err != nil {
		return Header{}, fmt.Errorf("cowd: %s: %w", f.Name(), err)
	}
	return h, nil
}

// writeHeader updates both header copies: the secondary first, made
// durable, then the primary, so a crash leaves at least one valid copy.
func writeHeader(f *os.File, h *Header) error {
	b, err := h.MarshalBinary()
	if err != nil {
		return err
	}
	for _, off := range []int64{headerCopySize, 0} {
		if _, err := f.WriteAt(b, off); err != nil {
			return fmt.Errorf("cowd: write header: %w", err)
		}
		if err := datasync(f); err != nil {
			return err
		}
	}
	return nil
}

// writeJournalHeader writes a journal header without a transaction.
func writeJournalHeader(f *os.File, h *Header, seq uint64, state uint32) error {
	b := make([]byte, pageSize)
	j := journalHeader{UUID: h.UUID, Seq: seq, State: state}
	if err := j.marshal(b); err != nil {
		return err
	}
	if _, err := f.WriteAt(b, h.JournalOffset); err != nil {
		return fmt.Errorf("cowd: write journal header: %w", err)
	}
	return nil
}

// replayJournal writes the page images of a committed transaction to their
// places in the map and makes them durable. Replaying twice is harmless.
func replayJournal(f *os.File, h *Header, j *journalHeader, images [][]byte) error {
	for i, p := range j.Pages {
		if _, err := f.WriteAt(images[i], h.MapOffset+int64(p)*pageSize); err != nil {
			return fmt.Errorf("cowd: replay journal page %d: %w", p, err)
		}
	}
	return datasync(f)
}

// loadMap reads the map, with the page images of a committed but not yet
// replayed transaction laid over it, and decodes every entry. Entries that
// fail to decode are reported in errs (their state is left as "base"); an
// I/O error is returned as err.
func loadMap(f *os.File, h *Header, j *journalHeader, images [][]byte) (states []uint64, errs []error, err error) {
	overlay := make(map[int64][]byte, len(images))
	if j != nil {
		for i, p := range j.Pages {
			overlay[int64(p)] = images[i]
		}
	}
	states = make([]uint64, h.Blocks)
	pages := mapPages(h.Blocks)
	buf := make([]byte, mapChunkPages*pageSize)
	for first := int64(0); first < pages; first += mapChunkPages {
		n := min(pages-first, mapChunkPages)
		chunk := buf[:n*pageSize]
		if _, err := f.ReadAt(chunk, h.MapOffset+first*pageSize); err != nil {
			return nil, nil, fmt.Errorf("%w: read map at page %d: %w", ErrCorrupt, first, err)
		}
		for i := range n {
			page := chunk[i*pageSize : (i+1)*pageSize]
			if img, ok := overlay[first+i]; ok {
				page = img
			}
			errs = decodePage(page, h, first+i, states, errs)
		}
	}
	return states, errs, nil
}

func decodePage(page []byte, h *Header, p int64, states []uint64, errs []error) []error {
	for i := range int64(recordsPerPage) {
		b := p*recordsPerPage + i
		rec := page[i*recordSize : (i+1)*recordSize]
		if b >= h.Blocks {
			if !allZero(rec) {
				errs = append(errs, fmt.Errorf("%w: map padding after the last block is not zero (page %d)", ErrFormat, p))
				return errs
			}
			continue
		}
		r, err := decodeRecord(rec, &h.UUID, b, h)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		states[b] = stateOf(h, r)
	}
	return errs
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// slotUsage is what a pass over the decoded map finds about data slots.
type slotUsage struct {
	used    []uint64 // bitmap of referenced slots
	highest int64    // highest referenced slot, -1 if none
	mapped  int64
	zero    int64
}

// scanSlots finds referenced slots and reports cross-linked slots and slots
// past the end of the file (slots written before their map entry was made
// durable can never be past the end, so either means corruption).
func scanSlots(states []uint64, h *Header, fileSize int64) (slotUsage, []error) {
	u := slotUsage{highest: -1}
	var errs []error
	bs := int64(h.BlockSize)
	avail := max(fileSize-h.DataOffset, 0) / bs
	for b, st := range states {
		switch {
		case st&stateZero != 0:
			u.zero++
			continue
		case st&stateMapped == 0:
			continue
		}
		u.mapped++
		s := int64(st >> stateShift)
		if s >= avail {
			errs = append(errs, fmt.Errorf("%w: block %d maps to data at %d, past the end of the file (%d bytes)",
				ErrCorrupt, b, h.DataOffset+s*bs, fileSize))
			continue
		}
		if w := int(s / 64); w >= len(u.used) {
			u.used = append(u.used, make([]uint64, w+1-len(u.used))...)
		}
		if u.used[s/64]&(1<<(s%64)) != 0 {
			errs = append(errs, fmt.Errorf("%w: block %d maps to data at %d, which another block uses too",
				ErrCorrupt, b, h.DataOffset+s*bs))
			continue
		}
		u.used[s/64] |= 1 << (s % 64)
		u.highest = max(u.highest, s)
	}
	return u, errs
}

// writeFreshMap writes an empty journal (allocated in full) and a map in
// which every block reads from the base, then sizes the file to the start
// of the data area. The caller makes it durable.
func writeFreshMap(f *os.File, h *Header) error {
	// Allocate the whole journal now: a flush must never hit ENOSPC there.
	if _, err := f.WriteAt(make([]byte, h.JournalLength), h.JournalOffset); err != nil {
		return fmt.Errorf("cowd: write journal: %w", err)
	}
	if err := writeJournalHeader(f, h, 0, journalClean); err != nil {
		return err
	}
	pages := mapPages(h.Blocks)
	buf := make([]byte, mapChunkPages*pageSize)
	for first := int64(0); first < pages; first += mapChunkPages {
		n := min(pages-first, mapChunkPages)
		for i := range n {
			encodeBasePage(buf[i*pageSize:(i+1)*pageSize], h, first+i)
		}
		if _, err := f.WriteAt(buf[:n*pageSize], h.MapOffset+first*pageSize); err != nil {
			return fmt.Errorf("cowd: write map: %w", err)
		}
	}
	if err := f.Truncate(h.DataOffset); err != nil {
		return fmt.Errorf("cowd: size image: %w", err)
	}
	return nil
}

// encodeBasePage encodes a page of "in the base" entries.
func encodeBasePage(dst []byte, h *Header, page int64) {
	first := page * recordsPerPage
	for i := range recordsPerPage {
		b := first + int64(i)
		rec := dst[i*recordSize : (i+1)*recordSize]
		if b >= h.Blocks {
			clear(rec)
			continue
		}
		encodeRecord(rec, &h.UUID, b, Record{})
	}
}
