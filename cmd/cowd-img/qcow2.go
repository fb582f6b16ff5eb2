package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/xentmem/xentmem/cowd/qcow2"
)

// isQcow2 reports whether the file at path starts with the qcow2 magic;
// info, check, map and commit then use the qcow2 variants below.
func isQcow2(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	format, err := qcow2.ProbeFormat(f)
	return err == nil && format == "qcow2"
}

// qcow2Info is what "info" reports for a qcow2 image.
type qcow2Info struct {
	Image             string `json:"filename"`
	Format            string `json:"format"`
	Compat            string `json:"compat"`
	VirtualSize       int64  `json:"virtual-size"`
	ActualSize        int64  `json:"actual-size"`
	ClusterSize       int64  `json:"cluster-size"`
	BackingFile       string `json:"backing-filename,omitempty"`
	FullBackingFile   string `json:"full-backing-filename,omitempty"`
	BackingFormat     string `json:"backing-filename-format,omitempty"`
	ExtendedL2        bool   `json:"extended-l2"`
	LazyRefcounts     bool   `json:"lazy-refcounts"`
	RefcountBits      int    `json:"refcount-bits"`
	Dirty             bool   `json:"dirty-flag"`
	Corrupt           bool   `json:"corrupt"`
	Clusters          int64  `json:"clusters"`
	DataClusters      int64  `json:"clusters-data"`
	ZeroClusters      int64  `json:"clusters-zero"`
	CompressedCluster int64  `json:"clusters-compressed"`
	BackingClusters   int64  `json:"clusters-in-backing"`
}

func getInfoQcow2(ctx context.Context, path string, force bool) (*qcow2Info, error) {
	im, err := qcow2.OpenImage(path, &qcow2.ImageOptions{ForceShare: force})
	if err != nil {
		return nil, err
	}
	defer im.Close()
	h := im.Header
	st, err := im.Stats(ctx)
	if err != nil {
		return nil, err
	}
	i := &qcow2Info{
		Image: path, Format: "qcow2", Compat: compatText(h.Version), VirtualSize: int64(h.Size),
		ActualSize: im.FileSize, ClusterSize: h.ClusterSize(), BackingFile: h.BackingFile,
		BackingFormat: h.BackingFormat, ExtendedL2: h.ExtendedL2(),
		LazyRefcounts: h.CompatibleFeatures&qcow2.CompatLazyRefcounts != 0, RefcountBits: h.RefcountBits(),
		Dirty: h.IncompatibleFeatures&qcow2.IncompatDirty != 0, Corrupt: h.IncompatibleFeatures&qcow2.IncompatCorrupt != 0,
		Clusters: st.Clusters, DataClusters: st.Data, ZeroClusters: st.Zero, CompressedCluster: st.Compressed,
		BackingClusters: st.Backing,
	}
	if h.BackingFile != "" {
		i.FullBackingFile = qcow2.BackingPath(path, h.BackingFile)
	}
	return i, nil
}

func formatInfoQcow2(w io.Writer, i *qcow2Info) {
	fmt.Fprintf(w, "image: %s\n", i.Image)
	fmt.Fprintf(w, "file format: qcow2\n")
	fmt.Fprintf(w, "virtual size: %s (%d bytes)\n", humanSize(i.VirtualSize), i.VirtualSize)
	fmt.Fprintf(w, "disk size: %s\n", humanSize(i.ActualSize))
	fmt.Fprintf(w, "cluster_size: %d\n", i.ClusterSize)
	if i.BackingFile != "" {
		fmt.Fprintf(w, "backing file: %s", i.BackingFile)
		if i.FullBackingFile != i.BackingFile {
			fmt.Fprintf(w, " (actual path: %s)", i.FullBackingFile)
		}
		fmt.Fprintln(w)
		if i.BackingFormat != "" {
			fmt.Fprintf(w, "backing file format: %s\n", i.BackingFormat)
		}
	}
	fmt.Fprintf(w, "clusters: %d total, %d data, %d zero, %d compressed, %d from the backing chain\n",
		i.Clusters, i.DataClusters, i.ZeroClusters, i.CompressedCluster, i.BackingClusters)
	fmt.Fprintf(w, "Format specific information:\n")
	fmt.Fprintf(w, "    compat: %s\n", i.Compat)
	fmt.Fprintf(w, "    lazy refcounts: %t\n", i.LazyRefcounts)
	fmt.Fprintf(w, "    refcount bits: %d\n", i.RefcountBits)
	fmt.Fprintf(w, "    corrupt: %t\n", i.Corrupt)
	fmt.Fprintf(w, "    extended l2: %t\n", i.ExtendedL2)
	if i.Dirty {
		fmt.Fprintf(w, "    dirty: true (refcounts are rebuilt when the image is next opened for writing)\n")
	}
}

func infoQcow2(ctx context.Context, path string, force bool, format string, stdout, stderr io.Writer) int {
	info, err := getInfoQcow2(ctx, path, force)
	if err != nil {
		return fail(stderr, err)
	}
	if format == "json" {
		if err := writeJSON(stdout, info); err != nil {
			return fail(stderr, err)
		}
		return 0
	}
	formatInfoQcow2(stdout, info)
	return 0
}

// qcow2CheckReport uses qemu-img check's JSON names.
type qcow2CheckReport struct {
	Filename           string   `json:"filename"`
	Format             string   `json:"format"`
	CheckErrors        int      `json:"check-errors"`
	Corruptions        int      `json:"corruptions"`
	Leaks              int64    `json:"leaks"`
	ImageEndOffset     int64    `json:"image-end-offset"`
	TotalClusters      int64    `json:"total-clusters"`
	AllocatedClusters  int64    `json:"allocated-clusters"`
	FragmentedClusters int64    `json:"fragmented-clusters"`
	CompressedClusters int64    `json:"compressed-clusters"`
	Dirty              bool     `json:"dirty-flag,omitempty"`
	Messages           []string `json:"messages,omitempty"`
	exitCode           int
}

func checkQcow2(ctx context.Context, path string, force, repair bool, format string, stdout, stderr io.Writer) int {
	if repair {
		if err := qcow2.Repair(path); err != nil {
			return fail(stderr, fmt.Errorf("repair: %w", err))
		}
	}
	im, err := qcow2.OpenImage(path, &qcow2.ImageOptions{ForceShare: force})
	if err != nil {
		fmt.Fprintf(stderr, "cowd-img: %v\n", err)
		return 1
	}
	defer im.Close()
	r, err := im.Check(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "cowd-img: %v\n", err)
		return 1
	}
	rep := &qcow2CheckReport{
		Filename: path, Format: "qcow2", Corruptions: r.Corruptions, Leaks: r.Leaks, ImageEndOffset: r.ImageEnd,
		TotalClusters: r.TotalClusters, AllocatedClusters: r.AllocatedClusters, FragmentedClusters: r.FragmentedClusters,
		CompressedClusters: r.CompressedClusters, Dirty: r.Dirty, Messages: r.Errors, exitCode: r.ExitCode(),
	}
	if format == "json" {
		if err := writeJSON(stdout, rep); err != nil {
			return fail(stderr, err)
		}
	} else {
		formatCheckQcow2(stdout, rep)
	}
	return rep.exitCode
}

func formatCheckQcow2(w io.Writer, r *qcow2CheckReport) {
	for _, m := range r.Messages {
		fmt.Fprintln(w, m)
	}
	switch {
	case r.Corruptions > 0:
		fmt.Fprintf(w, "\n%d errors were found on the image.\nData may be corrupted, or further writes to the image may corrupt it.\n", r.Corruptions)
	case r.Leaks > 0:
		fmt.Fprintf(w, "\n%d leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.\n", r.Leaks)
	default:
		fmt.Fprintln(w, "No errors were found on the image.")
	}
	if r.Leaks > 0 && r.Corruptions > 0 {
		fmt.Fprintf(w, "%d leaked clusters were found on the image.\n", r.Leaks)
	}
	pct := func(n int64) float64 { return 100 * float64(n) / float64(max(r.TotalClusters, 1)) }
	fmt.Fprintf(w, "%d/%d = %.2f%% allocated, %.2f%% fragmented, %.2f%% compressed clusters\n",
		r.AllocatedClusters, r.TotalClusters, pct(r.AllocatedClusters), pct(r.FragmentedClusters), pct(r.CompressedClusters))
	fmt.Fprintf(w, "Image end offset: %d\n", r.ImageEndOffset)
}

func mapQcow2(ctx context.Context, path string, force bool, format string, stdout, stderr io.Writer) int {
	im, err := qcow2.OpenImage(path, &qcow2.ImageOptions{ForceShare: force})
	if err != nil {
		return fail(stderr, err)
	}
	defer im.Close()
	exts, err := im.Extents(ctx)
	if err != nil {
		return fail(stderr, err)
	}
	if format == "json" {
		if err := writeJSON(stdout, exts); err != nil {
			return fail(stderr, err)
		}
		return 0
	}
	fmt.Fprintf(stdout, "%-18s %-18s %-18s %s\n", "Offset", "Length", "Mapped to", "State")
	for _, e := range exts {
		mapped := "-"
		if e.State == qcow2.ExtentData {
			mapped = fmt.Sprintf("%#x", e.Offset)
		}
		fmt.Fprintf(stdout, "%-18s %-18s %-18s %s\n", fmt.Sprintf("%#x", e.Start), fmt.Sprintf("%#x", e.Length), mapped, e.State)
	}
	return 0
}

func commitQcow2(ctx context.Context, path string, fn func(done, total int64)) error {
	return qcow2.Commit(ctx, path, fn)
}
