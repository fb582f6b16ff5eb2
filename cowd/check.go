package cowd

import (
	"context"
	"fmt"
	"os"
)

// CheckResult is the outcome of [Image.Check]. Its exit code follows
// qemu-img check: 0 clean, 2 corrupt, 3 leaks only.
type CheckResult struct {
	// Errors lists corruptions: undecodable map entries, data past the end
	// of the file, two blocks sharing data, and a base that no longer
	// matches its identity.
	Errors []error
	// LeakedBytes counts image space that nothing can use: a partial block
	// at the end of the data area (an interrupted extension). Free data
	// blocks are not leaks: dscow has no allocation table, a data block is
	// in use exactly when a map entry points to it, and cowd reuses the
	// others.
	LeakedBytes int64
	Stats       Stats
	FreeBlocks  int64 // data blocks no map entry uses
	ImageEnd    int64 // file size
	Journal     JournalState
}

// Corrupt reports whether the image has errors.
func (r *CheckResult) Corrupt() bool { return len(r.Errors) > 0 }

// ExitCode returns 0 (clean), 2 (corrupt) or 3 (leaks only).
func (r *CheckResult) ExitCode() int {
	switch {
	case r.Corrupt():
		return 2
	case r.LeakedBytes > 0:
		return 3
	}
	return 0
}

// Check verifies the metadata of the image: every map entry, data
// references against the file size and each other, and (unless skipBase)
// the base image against the recorded identity.
func (im *Image) Check(ctx context.Context, skipBase bool) (*CheckResult, error) {
	h := &im.Header
	r := &CheckResult{Stats: im.Stats(), ImageEnd: im.FileSize, Journal: im.Journal}
	r.Errors = append(r.Errors, im.mapErrs...)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	u, errs := scanSlots(im.states, h, im.FileSize)
	r.Errors = append(r.Errors, errs...)
	bs := int64(h.BlockSize)
	if im.FileSize < h.DataOffset {
		r.Errors = append(r.Errors, fmt.Errorf("%w: file ends at %d, before the data area at %d", ErrCorrupt, im.FileSize, h.DataOffset))
	} else {
		r.LeakedBytes = (im.FileSize - h.DataOffset) % bs
		used := int64(0)
		for _, w := range u.used {
			used += int64(popcount(w))
		}
		r.FreeBlocks = r.Stats.DataBlocks - used
	}
	if h.Features&FeatureCommitting != 0 {
		r.Errors = append(r.Errors, ErrCommitting)
	}
	if !skipBase {
		if err := checkBase(h); err != nil {
			r.Errors = append(r.Errors, err)
		}
	}
	return r, nil
}

func checkBase(h *Header) error {
	if h.Features&FeatureCommitting != 0 {
		return nil // the base is being rewritten; its identity is stale by design
	}
	f, err := os.Open(h.Base.Path)
	if err != nil {
		return fmt.Errorf("cowd: base: %w", err)
	}
	defer f.Close()
	_, err = verifyBase(f, h.Base)
	return err
}

func popcount(w uint64) int {
	n := 0
	for ; w != 0; w &= w - 1 {
		n++
	}
	return n
}

// Repair replays a pending journal transaction and drops unusable space at
// the end of the data area (cowd-img check -r). It refuses corrupt images:
// there is no safe automatic repair of a bad map entry.
func Repair(path string) error {
	d, err := Open(path, nil)
	if err != nil {
		return err
	}
	return d.Close()
}
