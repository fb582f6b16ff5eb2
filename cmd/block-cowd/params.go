package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"unicode"
)

// errParams is wrapped by every error in the xenstore "params" node.
var errParams = errors.New("bad block-cowd target")

// target is what the disk spec's target= (the backend's "params") names.
type target struct {
	Format string // dscow or qcow2
	Cow    string // the dscow image or qcow2 overlay
	Base   string // dscow only, optional: the base (created over it if the image is missing)
}

// parseParams reads "dscow:COW[:BASE]" or "qcow2:OVERLAY". Paths are
// absolute; COW cannot contain ':' (BASE, the rest of the string, can).
func parseParams(s string) (target, error) {
	s = strings.TrimSpace(s)
	format, rest, ok := strings.Cut(s, ":")
	if !ok {
		return target{}, fmt.Errorf("%w: %q: want dscow:COW[:BASE] or qcow2:OVERLAY", errParams, s)
	}
	t := target{Format: format}
	switch format {
	case "dscow":
		t.Cow, t.Base, _ = strings.Cut(rest, ":")
	case "qcow2":
		t.Cow = rest
	default:
		return target{}, fmt.Errorf("%w: format %q: want dscow or qcow2", errParams, format)
	}
	for _, p := range []struct {
		name string
		v    *string
	}{{"image", &t.Cow}, {"base", &t.Base}} {
		if *p.v == "" && p.name == "base" {
			continue
		}
		c := filepath.Clean(*p.v)
		if !filepath.IsAbs(c) || strings.TrimSpace(c) != c || strings.IndexFunc(c, unicode.IsControl) >= 0 {
			return target{}, fmt.Errorf("%w: %s %q: want an absolute path", errParams, p.name, *p.v)
		}
		*p.v = c
	}
	return t, nil
}
