package xenctl

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a Xen hypervisor version as XENVER_version and
// XENVER_extraversion report it.
type Version struct {
	Major, Minor int
	// Extra is the extraversion string, e.g. ".7", "-rc", ".2-pre".
	Extra string
}

// String returns e.g. "4.17.7".
func (v Version) String() string { return fmt.Sprintf("%d.%d%s", v.Major, v.Minor, v.Extra) }

// Point returns the point release parsed from the leading digits of Extra
// (".4" → 4, ".2-pre" → 2), or -1 when Extra does not start with a number.
func (v Version) Point() int {
	s := strings.TrimPrefix(v.Extra, ".")
	if s == v.Extra {
		return -1
	}
	end := 0
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, err := strconv.Atoi(s[:end])
	if err != nil {
		return -1
	}
	return n
}

// AtLeast reports whether v is major.minor or later.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

// ParseVersion parses "4.12.4", "4.12" or "4.0.1-rc" into a Version.
func ParseVersion(s string) (Version, error) {
	major, rest, ok := strings.Cut(s, ".")
	if !ok {
		return Version{}, fmt.Errorf("%w: xen version %q: want MAJOR.MINOR[EXTRA]", ErrBadInput, s)
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(rest[:end])
	if err1 != nil || err2 != nil || ma < 0 || mi < 0 || ma > 0xFFFF || mi > 0xFFFF {
		return Version{}, fmt.Errorf("%w: xen version %q: want MAJOR.MINOR[EXTRA]", ErrBadInput, s)
	}
	return Version{Major: ma, Minor: mi, Extra: rest[end:]}, nil
}

// sysctlInterface is XEN_SYSCTL_INTERFACE_VERSION per release
// (xen-tmem-abi.md §1.3; constant within a series).
var sysctlInterface = map[[2]int]uint32{
	{4, 0}: 0x07, {4, 1}: 0x08, {4, 2}: 0x09, {4, 3}: 0x0A, {4, 4}: 0x0A,
	{4, 5}: 0x0B, {4, 6}: 0x0C, {4, 7}: 0x0D, {4, 8}: 0x0E, {4, 9}: 0x0F,
	{4, 10}: 0x10, {4, 11}: 0x11, {4, 12}: 0x12, {4, 13}: 0x12, {4, 14}: 0x13,
	{4, 15}: 0x13, {4, 16}: 0x14, {4, 17}: 0x15, {4, 18}: 0x15, {4, 19}: 0x15,
	{4, 20}: 0x15, {4, 21}: 0x16, {4, 22}: 0x16,
}

// SysctlInterfaceVersion returns XEN_SYSCTL_INTERFACE_VERSION for v, and
// false for a release this package does not know.
func SysctlInterfaceVersion(v Version) (uint32, bool) {
	iv, ok := sysctlInterface[[2]int{v.Major, v.Minor}]
	return iv, ok
}

// Generation is a tmem control ABI generation (xen-tmem-abi.md §0).
type Generation int

// The generations. GenNone means the hypervisor has no tmem ABI (4.13+).
const (
	GenNone Generation = iota
	GenA0              // 4.0.0–4.0.1: tmem_op TMEM_CONTROL, 40-byte tmem_op
	GenA1              // 4.0.2–4.5: tmem_op TMEM_CONTROL, 56-byte tmem_op
	GenB               // 4.6–4.7: sysctl 24, arg1/arg2
	GenC               // 4.8: sysctl 24, client/pool info records
	GenD               // 4.9–4.12: adds SET_POOLS and SET_AUTH
)

// String returns "A0", "A1", "B", "C", "D" or "none".
func (g Generation) String() string {
	switch g {
	case GenA0:
		return "A0"
	case GenA1:
		return "A1"
	case GenB:
		return "B"
	case GenC:
		return "C"
	case GenD:
		return "D"
	}
	return "none"
}

// Releases names the Xen releases of the generation, e.g. "4.9–4.12".
func (g Generation) Releases() string {
	switch g {
	case GenA0:
		return "4.0.0–4.0.1"
	case GenA1:
		return "4.0.2–4.5"
	case GenB:
		return "4.6–4.7"
	case GenC:
		return "4.8"
	case GenD:
		return "4.9–4.12"
	}
	return "4.13 and later"
}

// GenerationOf returns the tmem ABI generation a Xen version speaks.
func GenerationOf(v Version) Generation {
	switch {
	case v.Major != 4 || v.Minor >= 13:
		return GenNone
	case v.Minor == 0:
		if p := v.Point(); p >= 0 && p < 2 {
			return GenA0
		}
		return GenA1
	case v.Minor <= 5:
		return GenA1
	case v.Minor <= 7:
		return GenB
	case v.Minor == 8:
		return GenC
	}
	return GenD
}
