package qcow2

import (
	"context"
	"fmt"
)

// ImageOptions configures [OpenImage]. A nil *ImageOptions means defaults.
type ImageOptions struct {
	// ForceShare reads an image that cowd or QEMU holds open (like
	// qemu-img -U). The result may mix states from before and after a
	// concurrent flush.
	ForceShare bool
}

// Image is a qcow2 image opened read-only for inspection (cowd-img info,
// map, check), without its backing chain.
type Image struct {
	d        *Device
	Header   Header
	FileSize int64
}

// OpenImage opens and validates an image without modifying it. It takes
// QEMU's shared read locks unless opts.ForceShare is set, so it fails with
// [ErrInUse] while a writer holds the image.
func OpenImage(path string, opts *ImageOptions) (*Image, error) {
	if opts == nil {
		opts = &ImageOptions{}
	}
	d, err := openDevice(path, true, !opts.ForceShare, DefaultCacheSize)
	if err != nil {
		return nil, err
	}
	return &Image{d: d, Header: d.hdr, FileSize: d.fileSize}, nil
}

// Close releases the image.
func (im *Image) Close() error { return im.d.closeFiles() }

// Check verifies the metadata as qemu-img check does: it recomputes every
// cluster's references and compares them with the refcounts.
func (im *Image) Check(ctx context.Context) (*CheckResult, error) {
	res, _, err := im.d.check(ctx)
	return res, err
}

// ExtentState is what a range of the guest disk is in this image.
type ExtentState uint8

// Extent states.
const (
	ExtentBacking    ExtentState = iota // not in this image: read from the backing chain (or zeroes)
	ExtentData                          // data in this image
	ExtentZero                          // reads as zeroes
	ExtentCompressed                    // a compressed cluster of this image
)

func (s ExtentState) String() string {
	switch s {
	case ExtentBacking:
		return "backing"
	case ExtentData:
		return "data"
	case ExtentZero:
		return "zero"
	case ExtentCompressed:
		return "compressed"
	}
	return fmt.Sprintf("ExtentState(%d)", uint8(s))
}

// MarshalText makes JSON output use the names.
func (s ExtentState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a name that MarshalText produced.
func (s *ExtentState) UnmarshalText(b []byte) error {
	for st := ExtentBacking; st <= ExtentCompressed; st++ {
		if st.String() == string(b) {
			*s = st
			return nil
		}
	}
	return fmt.Errorf("%w: extent state %q", ErrFormat, b)
}

// Extent is a run of the guest disk in one state.
type Extent struct {
	Start  int64       `json:"start"`
	Length int64       `json:"length"`
	State  ExtentState `json:"state"`
	// Offset is where the data of an ExtentData run lives in the image
	// file; -1 otherwise.
	Offset int64 `json:"offset"`
}

// Extents returns the guest disk as maximal runs of one state; data runs
// are split where they are not contiguous in the image file.
func (im *Image) Extents(ctx context.Context) ([]Extent, error) {
	return im.d.extents(ctx)
}

// Stats counts guest clusters by what this image holds for them.
type Stats struct {
	Clusters, Data, Zero, Compressed, Backing int64
}

// Stats returns the cluster counts (a cluster counts as data if any of
// its subclusters is).
func (im *Image) Stats(ctx context.Context) (Stats, error) {
	d := im.d
	s := Stats{Clusters: d.g.clusters()}
	err := d.forEachEntry(ctx, func(c int64, e, bm uint64) {
		switch {
		case e&flagCompressed != 0:
			s.Compressed++
		case d.g.extL2 && uint32(bm) != 0, !d.g.extL2 && d.g.kindOf(e, 0, 0) == kindData:
			s.Data++
		case d.g.extL2 && uint32(bm>>subclusters) != 0, !d.g.extL2 && d.g.kindOf(e, 0, 0) == kindZero:
			s.Zero++
		}
	})
	s.Backing = s.Clusters - s.Data - s.Zero - s.Compressed
	return s, err
}

// forEachEntry calls fn for every guest cluster with a non-zero entry.
func (d *Device) forEachEntry(ctx context.Context, fn func(c int64, e, bm uint64)) error {
	g := &d.g
	for l1i := range int64(len(d.l1)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		d.mu.Lock()
		t, err := d.table(l1i)
		if err != nil || t == nil {
			d.mu.Unlock()
			if err != nil {
				return err
			}
			continue
		}
		for j := range g.l2Entries() {
			c := l1i<<g.l2Bits + j
			if c >= g.clusters() {
				break
			}
			if e, bm := g.entry(t.buf, j); e != 0 || bm != 0 {
				fn(c, e, bm)
			}
		}
		d.mu.Unlock()
	}
	return nil
}

// extents lists the runs of the guest disk.
func (d *Device) extents(ctx context.Context) ([]Extent, error) {
	g := &d.g
	var out []Extent
	add := func(start, n int64, st ExtentState, off int64) {
		if k := len(out); k > 0 {
			last := &out[k-1]
			if last.State == st && last.Start+last.Length == start &&
				(st != ExtentData || last.Offset+last.Length == off) {
				last.Length += n
				return
			}
		}
		out = append(out, Extent{Start: start, Length: n, State: st, Offset: off})
	}
	pos := int64(0)
	err := d.forEachEntry(ctx, func(c int64, e, bm uint64) {
		start := c << g.clusterBits
		if start > pos {
			add(pos, start-pos, ExtentBacking, -1)
		}
		cl := g.clusterLen(c)
		pos = start + cl
		if e&flagCompressed != 0 {
			add(start, cl, ExtentCompressed, -1)
			return
		}
		scs := g.scSize()
		for in := int64(0); in < cl; in += scs {
			n := min(scs, cl-in)
			switch g.kindOf(e, bm, int(in>>g.scBits)) {
			case kindData:
				add(start+in, n, ExtentData, int64(e&offsetMask)+in)
			case kindZero:
				add(start+in, n, ExtentZero, -1)
			default:
				add(start+in, n, ExtentBacking, -1)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if pos < g.size {
		add(pos, g.size-pos, ExtentBacking, -1)
	}
	return out, nil
}
