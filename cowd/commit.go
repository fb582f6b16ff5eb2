package cowd

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// Commit merges the overlay at path into its base (cowd-img commit): every
// data block is written to the base, every zero block is zeroed there,
// then the overlay is emptied and records the base's new identity.
//
// While it runs, the header carries [FeatureCommitting], so cowd refuses
// the image; if Commit is interrupted (crash, ctx cancelled), running it
// again finishes the job, since the overlay keeps its data until the base
// holds it durably. progress, if not nil, is called with bytes done and
// bytes to do.
func Commit(ctx context.Context, path string, progress func(done, total int64)) (err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("cowd: %s: %w", opCommit, err)
	}
	defer f.Close()
	if err := lockFile(f, true); err != nil {
		return err
	}
	h, err := readHeader(f)
	if err != nil {
		return err
	}
	base, err := os.OpenFile(h.Base.Path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("cowd: %s: open base read-write: %w", opCommit, err)
	}
	defer func() { err = errors.Join(err, base.Close()) }()
	if h.Features&FeatureCommitting == 0 {
		if _, err := verifyBase(base, h.Base); err != nil {
			return fmt.Errorf("cowd: %s: %w", opCommit, err)
		}
	}
	j, images, js, err := readJournal(f, &h)
	if err != nil {
		return err
	}
	if images != nil {
		if err := replayJournal(f, &h, &j, images); err != nil {
			return err
		}
	}
	states, errs, err := loadMap(f, &h, nil, nil)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cowd: %s: %w", opCommit, err)
	}
	if _, serrs := scanSlots(states, &h, fi.Size()); len(errs)+len(serrs) > 0 {
		return fmt.Errorf("%w: %d bad map entries (run cowd-img check)", ErrCorrupt, len(errs)+len(serrs))
	}
	// No stale transaction may ever be replayed over the map we rewrite.
	if err := writeJournalHeader(f, &h, js.Seq+1, journalOpen); err != nil {
		return err
	}
	h.Features |= FeatureCommitting
	if err := writeHeader(f, &h); err != nil {
		return err
	}
	if err := copyToBase(ctx, f, base, &h, states, progress); err != nil {
		return err
	}
	if err := datasync(base); err != nil {
		return err
	}
	if err := writeFreshMap(f, &h); err != nil {
		return err
	}
	if err := datasync(f); err != nil {
		return err
	}
	id, err := computeIdentity(base, h.Base.Path)
	if err != nil {
		return err
	}
	h.Base = id
	h.Features &^= FeatureCommitting
	return writeHeader(f, &h)
}

// copyToBase writes the overlay's data and zero blocks into the base.
func copyToBase(ctx context.Context, f, base *os.File, h *Header, states []uint64, progress func(int64, int64)) error {
	bs := int64(h.BlockSize)
	var total, done int64
	for b, st := range states {
		if st != stateBase {
			total += min(bs, h.Size-int64(b)*bs)
		}
	}
	if progress != nil {
		progress(0, total)
	}
	buf := make([]byte, bs)
	for b, st := range states {
		if st == stateBase {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("cowd: %s interrupted (run it again to finish): %w", opCommit, err)
		}
		off := int64(b) * bs
		blk := buf[:min(bs, h.Size-off)]
		if st&stateMapped != 0 {
			if _, err := f.ReadAt(blk, h.DataOffset+int64(st>>stateShift)*bs); err != nil {
				return fmt.Errorf("cowd: %s: read block %d: %w", opCommit, b, err)
			}
		} else {
			clear(blk)
		}
		if _, err := base.WriteAt(blk, off); err != nil {
			return fmt.Errorf("cowd: %s: write base at %d: %w", opCommit, off, err)
		}
		done += int64(len(blk))
		if progress != nil {
			progress(done, total)
		}
	}
	return nil
}
