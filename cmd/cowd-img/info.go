package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/xentmem/xentmem/cowd"
)

// imageInfo is what "info" reports; text and JSON render the same data.
type imageInfo struct {
	Image       string    `json:"image"`
	Format      string    `json:"format"`
	Version     uint32    `json:"version"`
	VirtualSize int64     `json:"virtual-size"`
	BlockSize   uint32    `json:"block-size"`
	Blocks      int64     `json:"blocks"`
	UUID        string    `json:"uuid"`
	Created     time.Time `json:"created"`
	FileSize    int64     `json:"actual-size"`
	Base        baseInfo  `json:"base"`
	Mapped      int64     `json:"blocks-in-cow"`
	Zero        int64     `json:"blocks-zero"`
	InBase      int64     `json:"blocks-in-base"`
	DataBlocks  int64     `json:"data-blocks"`
	Clean       bool      `json:"clean"`
	Pending     int       `json:"journal-pending-pages"`
	Committing  bool      `json:"commit-in-progress"`
}

type baseInfo struct {
	Path    string    `json:"path"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mtime"`
	Digest  string    `json:"sample-digest"`
}

func getInfo(path string, force bool) (*imageInfo, error) {
	im, err := cowd.OpenImage(path, &cowd.ImageOptions{ForceShare: force})
	if err != nil {
		return nil, err
	}
	defer im.Close()
	h, st := im.Header, im.Stats()
	return &imageInfo{
		Image: path, Format: "dscow", Version: h.Version, VirtualSize: h.Size, BlockSize: h.BlockSize,
		Blocks: h.Blocks, UUID: hex.EncodeToString(h.UUID[:]), Created: h.Created, FileSize: im.FileSize,
		Base: baseInfo{Path: h.Base.Path, Size: h.Base.Size, ModTime: h.Base.ModTime,
			Digest: hex.EncodeToString(h.Base.Digest[:])},
		Mapped: st.Mapped, Zero: st.Zero, InBase: st.Base, DataBlocks: st.DataBlocks,
		Clean: im.Journal.Valid && im.Journal.Clean, Pending: im.Journal.Pending,
		Committing: h.Features&cowd.FeatureCommitting != 0,
	}, nil
}

func formatInfo(w io.Writer, i *imageInfo) {
	fmt.Fprintf(w, "image: %s\n", i.Image)
	fmt.Fprintf(w, "file format: dscow (version %d)\n", i.Version)
	fmt.Fprintf(w, "virtual size: %s (%d bytes)\n", humanSize(i.VirtualSize), i.VirtualSize)
	fmt.Fprintf(w, "disk size: %s\n", humanSize(i.FileSize))
	fmt.Fprintf(w, "block size: %d\n", i.BlockSize)
	fmt.Fprintf(w, "base file: %s\n", i.Base.Path)
	fmt.Fprintf(w, "base size: %d bytes, mtime %s\n", i.Base.Size, i.Base.ModTime.Format(time.RFC3339))
	fmt.Fprintf(w, "uuid: %s\n", i.UUID)
	fmt.Fprintf(w, "created: %s\n", i.Created.Format(time.RFC3339))
	fmt.Fprintf(w, "blocks: %d total, %d in CoW store, %d zero, %d in base\n", i.Blocks, i.Mapped, i.Zero, i.InBase)
	state := "clean"
	switch {
	case i.Committing:
		state = "commit in progress (run cowd-img commit to finish)"
	case i.Pending > 0:
		state = fmt.Sprintf("not closed cleanly; %d journal pages to replay at next open", i.Pending)
	case !i.Clean:
		state = "in use, or not closed cleanly (nothing to replay)"
	}
	fmt.Fprintf(w, "state: %s\n", state)
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, u := float64(n), 0
	for v >= unit && u < 5 {
		v /= unit
		u++
	}
	return fmt.Sprintf("%.3g %ciB", v, "KMGTPE"[u-1])
}

func cmdInfo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("info", "IMAGE", stderr)
	format := fs.String("o", "text", "output `format`: text or json")
	force := fs.Bool("U", false, "read an image that cowd has open")
	if code := parse(fs, args, 1, 1); code >= 0 {
		return code
	}
	if !checkFormat(*format, stderr) {
		return 2
	}
	if isQcow2(fs.Arg(0)) {
		return infoQcow2(ctx, fs.Arg(0), *force, *format, stdout, stderr) // qcow2.go
	}
	info, err := getInfo(fs.Arg(0), *force)
	if err != nil {
		return fail(stderr, err)
	}
	if *format == "json" {
		if err := writeJSON(stdout, info); err != nil {
			return fail(stderr, err)
		}
		return 0
	}
	formatInfo(stdout, info)
	return 0
}
