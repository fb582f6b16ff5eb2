package main

import (
	"context"
	"fmt"
	"io"

	"github.com/xentmem/xentmem/cowd"
)

func getMap(path string, force bool) ([]cowd.Extent, error) {
	im, err := cowd.OpenImage(path, &cowd.ImageOptions{ForceShare: force})
	if err != nil {
		return nil, err
	}
	defer im.Close()
	return im.Extents(), nil
}

// formatMap prints one line per extent, like "qemu-img map" in its human
// format but listing every state.
func formatMap(w io.Writer, exts []cowd.Extent) {
	fmt.Fprintf(w, "%-18s %-18s %-18s %s\n", "Offset", "Length", "Mapped to", "State")
	for _, e := range exts {
		mapped := "-"
		if e.State == cowd.StateData {
			mapped = fmt.Sprintf("%#x", e.Offset)
		}
		fmt.Fprintf(w, "%-18s %-18s %-18s %s\n", fmt.Sprintf("%#x", e.Start), fmt.Sprintf("%#x", e.Length), mapped, e.State)
	}
}

func cmdMap(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("map", "IMAGE", stderr)
	format := fs.String("o", "text", "output `format`: text or json")
	force := fs.Bool("U", false, "read an image that cowd has open")
	if code := parse(fs, args, 1, 1); code >= 0 {
		return code
	}
	if !checkFormat(*format, stderr) {
		return 2
	}
	if isQcow2(fs.Arg(0)) {
		return mapQcow2(ctx, fs.Arg(0), *force, *format, stdout, stderr) // qcow2.go
	}
	exts, err := getMap(fs.Arg(0), *force)
	if err != nil {
		return fail(stderr, err)
	}
	if *format == "json" {
		if err := writeJSON(stdout, exts); err != nil {
			return fail(stderr, err)
		}
		return 0
	}
	formatMap(stdout, exts)
	return 0
}
