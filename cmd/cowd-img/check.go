package main

import (
	"context"
	"fmt"
	"io"

	"github.com/xentmem/xentmem/cowd"
)

// checkReport is what "check" reports, with qemu-img check's JSON names
// where they apply.
type checkReport struct {
	Filename        string   `json:"filename"`
	Format          string   `json:"format"`
	CheckErrors     int      `json:"check-errors"`
	Corruptions     int      `json:"corruptions"`
	Errors          []string `json:"errors,omitempty"`
	Leaks           int64    `json:"leaks"`
	ImageEndOffset  int64    `json:"image-end-offset"`
	TotalBlocks     int64    `json:"total-clusters"`
	AllocatedBlocks int64    `json:"allocated-clusters"`
	ZeroBlocks      int64    `json:"zero-clusters"`
	FreeBlocks      int64    `json:"free-clusters"`
	JournalPending  int      `json:"journal-pending-pages"`
	ExitCode        int      `json:"-"`
}

func getCheck(ctx context.Context, path string, force, skipBase bool) (*checkReport, error) {
	im, err := cowd.OpenImage(path, &cowd.ImageOptions{ForceShare: force})
	if err != nil {
		return nil, err
	}
	defer im.Close()
	r, err := im.Check(ctx, skipBase)
	if err != nil {
		return nil, err
	}
	rep := &checkReport{
		Filename: path, Format: "dscow", Corruptions: len(r.Errors), Leaks: r.LeakedBytes,
		ImageEndOffset: r.ImageEnd, TotalBlocks: r.Stats.Blocks, AllocatedBlocks: r.Stats.Mapped,
		ZeroBlocks: r.Stats.Zero, FreeBlocks: r.FreeBlocks, JournalPending: r.Journal.Pending,
		ExitCode: r.ExitCode(),
	}
	for _, e := range r.Errors {
		rep.Errors = append(rep.Errors, e.Error())
	}
	return rep, nil
}

func formatCheck(w io.Writer, r *checkReport) {
	for _, e := range r.Errors {
		fmt.Fprintf(w, "ERROR %s\n", e)
	}
	switch {
	case r.Corruptions > 0:
		fmt.Fprintf(w, "\n%d errors were found on the image.\nData may be corrupted, or further writes to the image may corrupt it.\n", r.Corruptions)
	case r.Leaks > 0:
		fmt.Fprintf(w, "%d leaked bytes were found at the end of the image.\nThis means waste of disk space, but no harm to data; cowd drops them at its next start.\n", r.Leaks)
	default:
		fmt.Fprintln(w, "No errors were found on the image.")
	}
	fmt.Fprintf(w, "%d/%d = %.2f%% allocated, %d zero, %d free data blocks\n", r.AllocatedBlocks, r.TotalBlocks,
		100*float64(r.AllocatedBlocks)/float64(max(r.TotalBlocks, 1)), r.ZeroBlocks, r.FreeBlocks)
	if r.JournalPending > 0 {
		fmt.Fprintf(w, "Journal: %d map pages committed but not yet replayed (done at the next open).\n", r.JournalPending)
	}
	fmt.Fprintf(w, "Image end offset: %d\n", r.ImageEndOffset)
}

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", "IMAGE", stderr)
	format := fs.String("o", "text", "output `format`: text or json")
	force := fs.Bool("U", false, "read an image that cowd has open")
	repair := fs.Bool("r", false, "repair leaks: replay the journal and drop unusable space (needs exclusive access)")
	skipBase := fs.Bool("skip-base", false, "do not verify the base image's identity")
	if code := parse(fs, args, 1, 1); code >= 0 {
		return code
	}
	if !checkFormat(*format, stderr) {
		return 2
	}
	path := fs.Arg(0)
	if isQcow2(path) {
		return checkQcow2(ctx, path, *force, *repair, *format, stdout, stderr) // qcow2.go
	}
	if *repair {
		if err := cowd.Repair(path); err != nil {
			return fail(stderr, fmt.Errorf("repair: %w", err))
		}
	}
	rep, err := getCheck(ctx, path, *force, *skipBase)
	if err != nil {
		fmt.Fprintf(stderr, "cowd-img: %v\n", err)
		return 1 // the check itself failed, as in qemu-img
	}
	if *format == "json" {
		if err := writeJSON(stdout, rep); err != nil {
			return fail(stderr, err)
		}
	} else {
		formatCheck(stdout, rep)
	}
	return rep.ExitCode
}
