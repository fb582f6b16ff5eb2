package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/xentmem/xentmem/cowd/qcow2"
)

// isQcow2Create reports whether create's arguments ask for a qcow2 image
// ("-f qcow2" or "-f=qcow2"); the dscow create keeps its boolean -f
// (overwrite), so a dscow image literally named "qcow2" needs "-f=true".
func isQcow2Create(args []string) bool {
	for i, a := range args {
		switch {
		case a == "--":
			return false
		case (a == "-f" || a == "--f") && i+1 < len(args) && args[i+1] == "qcow2":
			return true
		case a == "-f=qcow2" || a == "--f=qcow2":
			return true
		}
	}
	return false
}

// parseInterspersed parses flags that may follow positional arguments, as
// qemu-img accepts, and returns the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parseSize parses a size with an optional binary suffix (k, M, G, T, P,
// E; also as KiB, MiB...), as qemu-img does.
func parseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(s, "iB"), "B")
	shift := 0
	if n := len(t); n > 0 {
		if i := strings.IndexByte("kmgtpe", lower(t[n-1])); i >= 0 {
			shift = 10 * (i + 1)
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 || (shift > 0 && v > (1<<62)>>shift) {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return v << shift, nil
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// parseCreateOptions applies a qemu-img style "-o key=value,..." list.
func parseCreateOptions(s string, o *qcow2.CreateOptions) error {
	if s == "" {
		return nil
	}
	onOff := func(k, v string) (bool, error) {
		switch v {
		case "on", "true", "yes":
			return true, nil
		case "off", "false", "no":
			return false, nil
		}
		return false, fmt.Errorf("option %s=%q: want on or off", k, v)
	}
	for kv := range strings.SplitSeq(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "cluster_size":
			var n int64
			n, err = parseSize(v)
			o.ClusterSize = int(n)
		case "extended_l2":
			o.ExtendedL2, err = onOff(k, v)
		case "lazy_refcounts":
			o.LazyRefcounts, err = onOff(k, v)
		case "refcount_bits":
			o.RefcountBits, err = strconv.Atoi(v)
		case "compat":
			switch v {
			case "0.10", "v2":
				o.Version = 2
			case "1.1", "v3":
				o.Version = 3
			default:
				err = fmt.Errorf("option compat=%q: want 0.10 or 1.1", v)
			}
		case "backing_file":
			o.BackingFile = v
		case "backing_fmt":
			o.BackingFormat = v
		case "size":
			o.Size, err = parseSize(v)
		default:
			err = fmt.Errorf("unknown option %q (cluster_size, extended_l2, lazy_refcounts, refcount_bits, compat, backing_file, backing_fmt, size)", k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// cmdCreateQcow2 is "create -f qcow2 [-b BASE -F FMT] [-o OPTIONS] [-force] IMAGE [SIZE]".
func cmdCreateQcow2(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("create", "-f qcow2 [-b BASE -F raw|qcow2] [-o OPTIONS] IMAGE [SIZE]", stderr)
	format := fs.String("f", "qcow2", "image `format`")
	backing := fs.String("b", "", "backing `file` (a relative name is relative to IMAGE's directory)")
	backingFmt := fs.String("F", "", "backing file `format`: raw or qcow2 (probed if not given)")
	optList := fs.String("o", "", "qemu-img style `options`: cluster_size=64k,extended_l2=on,lazy_refcounts=on,refcount_bits=16,compat=1.1")
	force := fs.Bool("force", false, "overwrite an existing IMAGE")
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if *format != "qcow2" || len(pos) < 1 || len(pos) > 2 {
		fs.Usage()
		return 2
	}
	o := &qcow2.CreateOptions{BackingFile: *backing, BackingFormat: *backingFmt, Force: *force}
	if err := parseCreateOptions(*optList, o); err != nil {
		fmt.Fprintf(stderr, "cowd-img: %v\n", err)
		return 2
	}
	if len(pos) == 2 {
		if o.Size, err = parseSize(pos[1]); err != nil {
			fmt.Fprintf(stderr, "cowd-img: %v\n", err)
			return 2
		}
	}
	if o.Size == 0 && o.BackingFile == "" {
		fmt.Fprintln(stderr, "cowd-img: a qcow2 image without a backing file needs a SIZE")
		return 2
	}
	if o.BackingFile != "" && o.BackingFormat == "" {
		fmt.Fprintln(stderr, "cowd-img: warning: no backing format given (-F); probing it and recording the result")
	}
	h, err := qcow2.Create(pos[0], o)
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "Formatting '%s', fmt=qcow2 cluster_size=%d extended_l2=%s compression_type=zlib size=%d",
		pos[0], h.ClusterSize(), onOffText(h.ExtendedL2()), h.Size)
	if h.BackingFile != "" {
		fmt.Fprintf(stdout, " backing_file=%s backing_fmt=%s", h.BackingFile, h.BackingFormat)
	}
	fmt.Fprintf(stdout, " lazy_refcounts=%s refcount_bits=%d compat=%s\n",
		onOffText(h.CompatibleFeatures&qcow2.CompatLazyRefcounts != 0), h.RefcountBits(), compatText(h.Version))
	return 0
}

func onOffText(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func compatText(version uint32) string {
	if version == 2 {
		return "0.10"
	}
	return "1.1"
}
