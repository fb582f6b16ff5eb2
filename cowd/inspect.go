package cowd

import (
	"fmt"
	"os"
)

// ImageOptions configures [OpenImage]. A nil *ImageOptions means defaults.
type ImageOptions struct {
	// ForceShare reads an image that a running cowd holds open (like
	// qemu-img -U). The result is a snapshot that may mix states from
	// before and after a concurrent flush.
	ForceShare bool
}

// Image is a dscow image opened read-only for inspection (cowd-img info,
// map, check). The map it shows includes a committed journal transaction
// that has not been replayed yet, exactly as the next Open would see it.
type Image struct {
	f        *os.File
	Header   Header
	Journal  JournalState
	FileSize int64
	states   []uint64
	mapErrs  []error
}

// OpenImage opens and decodes an image without modifying it. It takes a
// shared lock, failing with [ErrInUse] while cowd serves the image, unless
// opts.ForceShare is set.
func OpenImage(path string, opts *ImageOptions) (_ *Image, err error) {
	if opts == nil {
		opts = &ImageOptions{}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cowd: open image: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if !opts.ForceShare {
		if err := lockFile(f, false); err != nil {
			return nil, err
		}
	}
	h, err := readHeader(f)
	if err != nil {
		return nil, err
	}
	j, images, js, err := readJournal(f, &h)
	if err != nil {
		return nil, err
	}
	states, errs, err := loadMap(f, &h, &j, images)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cowd: stat image: %w", err)
	}
	return &Image{f: f, Header: h, Journal: js, FileSize: fi.Size(), states: states, mapErrs: errs}, nil
}

// Close releases the image.
func (im *Image) Close() error { return im.f.Close() }

// BlockState is the state of a range of the virtual disk.
type BlockState uint8

// Block states.
const (
	StateBase BlockState = iota // still read from the base image
	StateData                   // copied into the CoW store
	StateZero                   // reads as zeroes (trimmed or zeroed)
)

func (s BlockState) String() string {
	switch s {
	case StateBase:
		return "base"
	case StateData:
		return "data"
	case StateZero:
		return "zero"
	}
	return fmt.Sprintf("BlockState(%d)", uint8(s))
}

// MarshalText makes JSON output use the names.
func (s BlockState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Extent is a run of the virtual disk in one state.
type Extent struct {
	Start  int64      `json:"start"`
	Length int64      `json:"length"`
	State  BlockState `json:"state"`
	// Offset is where the data of a StateData extent lives in the image
	// file; -1 otherwise.
	Offset int64 `json:"offset"`
}

// Extents returns the virtual disk as maximal runs of one state; data runs
// are split where their data is not contiguous in the image.
func (im *Image) Extents() []Extent {
	h := &im.Header
	bs := int64(h.BlockSize)
	var out []Extent
	for b, st := range im.states {
		e := Extent{Start: int64(b) * bs, Length: min(bs, h.Size-int64(b)*bs), Offset: -1}
		switch {
		case st&stateMapped != 0:
			e.State, e.Offset = StateData, h.DataOffset+int64(st>>stateShift)*bs
		case st&stateZero != 0:
			e.State = StateZero
		}
		if n := len(out); n > 0 {
			last := &out[n-1]
			if last.State == e.State && (e.State != StateData || last.Offset+last.Length == e.Offset) {
				last.Length += e.Length
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

// Stats counts the image's blocks by state.
func (im *Image) Stats() Stats {
	s := Stats{Blocks: im.Header.Blocks}
	for _, st := range im.states {
		switch {
		case st&stateMapped != 0:
			s.Mapped++
		case st&stateZero != 0:
			s.Zero++
		default:
			s.Base++
		}
	}
	s.DataBlocks = max(im.FileSize-im.Header.DataOffset, 0) / int64(im.Header.BlockSize)
	return s
}
