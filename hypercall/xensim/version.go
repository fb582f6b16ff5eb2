package xensim

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/hypercall/hypercalltest"
)

// generation is a tmem control ABI generation (xen-tmem-abi.md §0).
type generation int

const (
	genNone generation = iota // 4.13 and later
	genA0                     // 4.0.0, 4.0.1: 40-byte tmem_op, TMEM_CONTROL
	genA1                     // 4.0.2–4.5: 56-byte tmem_op, TMEM_CONTROL
	genB                      // 4.6–4.7: sysctl 24, arg1/arg2
	genC                      // 4.8: sysctl 24, client/pool records
	genD                      // 4.9–4.12: SET_POOLS, SET_AUTH
)

// release is the emulated Xen release and everything chosen from it.
type release struct {
	major, minor, point int
	extra               string
	gen                 generation
	iface               uint32
}

// sysctlInterface is XEN_SYSCTL_INTERFACE_VERSION per minor release of 4.x
// (xen-tmem-abi.md §1.3).
var sysctlInterface = [...]uint32{
	0: 0x07, 1: 0x08, 2: 0x09, 3: 0x0A, 4: 0x0A, 5: 0x0B, 6: 0x0C, 7: 0x0D,
	8: 0x0E, 9: 0x0F, 10: 0x10, 11: 0x11, 12: 0x12, 13: 0x12, 14: 0x13,
	15: 0x13, 16: 0x14, 17: 0x15, 18: 0x15, 19: 0x15, 20: 0x15, 21: 0x16, 22: 0x16,
}

// parseRelease parses "4.12.4", "4.0.1", "4.17.7" or "4.2.0-rc1". Only
// Xen 4.0 … 4.22 is known.
func parseRelease(s string) (release, error) {
	var r release
	maj, rest, ok := strings.Cut(s, ".")
	if !ok {
		return r, fmt.Errorf("xensim: version %q: want 4.MINOR.POINT", s)
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	ma, err1 := strconv.Atoi(maj)
	mi, err2 := strconv.Atoi(rest[:end])
	if err1 != nil || err2 != nil || ma != 4 || mi < 0 || mi >= len(sysctlInterface) {
		return r, fmt.Errorf("xensim: version %q: only Xen 4.0 … 4.%d are known", s, len(sysctlInterface)-1)
	}
	r.major, r.minor, r.extra = ma, mi, rest[end:]
	if r.extra == "" {
		r.extra = ".0"
	}
	p := strings.TrimPrefix(r.extra, ".")
	e := 0
	for e < len(p) && p[e] >= '0' && p[e] <= '9' {
		e++
	}
	r.point, _ = strconv.Atoi(p[:e])
	r.iface = sysctlInterface[mi]
	switch {
	case mi >= 13:
		r.gen = genNone
	case mi == 0 && r.point < 2:
		r.gen = genA0
	case mi <= 5:
		r.gen = genA1
	case mi <= 7:
		r.gen = genB
	case mi == 8:
		r.gen = genC
	default:
		r.gen = genD
	}
	return r, nil
}

func (r release) String() string { return fmt.Sprintf("%d.%d%s", r.major, r.minor, r.extra) }

// atLeast reports whether r is 4.minor or later (major is always 4).
func (r release) atLeast(major, minor int) bool {
	return r.major > major || r.major == major && r.minor >= minor
}

// atLeastPoint reports whether r is major.minor.point or later.
func (r release) atLeastPoint(major, minor, point int) bool {
	if r.major != major || r.minor != minor {
		return r.atLeast(major, minor)
	}
	return r.point >= point
}

// tmemABI reports whether the release has tmem at all (4.0–4.12).
func (r release) tmemABI() bool { return r.gen != genNone }

// controlNeedsPrivilege: TMEM_CONTROL from a guest is refused from 4.1.4,
// 4.2.1 and 4.3.0 on (XSA-15).
func (r release) controlNeedsPrivilege() bool {
	switch r.minor {
	case 0:
		return false
	case 1:
		return r.point >= 4
	case 2:
		return r.point >= 1
	}
	return true
}

// oldPoolSave: SAVE_GET_POOL_UUID falls through into SAVE_END and pool
// flags lack the version bits before 4.1.4 and 4.2.1.
func (r release) oldPoolSave() bool {
	return r.minor == 0 || r.minor == 1 && r.point < 4 || r.minor == 2 && r.point < 1
}

// specVersion is TMEM_SPEC_VERSION: 0 on 4.0.0/4.0.1, 1 afterwards.
func (r release) specVersion() uint32 {
	if r.gen == genA0 {
		return 0
	}
	return 1
}

// capabilities returns the XENVER_capabilities string. Debian's 4.17
// build has no 32-bit PV support; older builds do.
func (r release) capabilities() string {
	if r.atLeast(4, 17) {
		return "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64 "
	}
	return "xen-3.0-x86_64 xen-3.0-x86_32p hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64 "
}

// physCapabilities returns the physinfo capabilities word of the
// transcripts: 4.12 reports hvm|pv, 4.17 adds hap and the grant-table bits;
// before 4.12 bit 0 is hvm and bit 1 hvm_directio.
func (r release) physCapabilities() uint32 {
	switch {
	case r.atLeast(4, 17):
		return 0x30b
	case r.atLeast(4, 12):
		return 0x3
	}
	return 0x1
}

// Strings returned by xen_version.
const (
	xenverCompileInfoLen = 4 * 64 // struct xen_compile_info
	xenverFeaturesLen    = 8
	xenverPlatformLen    = 8
)

// xenVersion serves __HYPERVISOR_xen_version.
func (s *Sim) xenVersion(args hypercall.Args, mem *hypercalltest.Memory) (int64, error) {
	switch args[0] {
	case hypercall.XENVER_version:
		return int64(s.rel.major)<<16 | int64(s.rel.minor), nil
	case hypercall.XENVER_pagesize:
		return pageSize, nil
	case hypercall.XENVER_extraversion:
		return 0, s.copyString(mem, args[1], s.rel.extra, hypercall.XenExtraversionLen)
	case hypercall.XENVER_capabilities:
		return 0, s.copyString(mem, args[1], s.rel.capabilities(), hypercall.XenCapabilitiesLen)
	case hypercall.XENVER_changeset:
		return 0, s.copyString(mem, args[1], "", hypercall.XenChangesetLen)
	case hypercall.XENVER_commandline:
		return 0, s.copyString(mem, args[1], s.cmdline, hypercall.XenCommandlineLen)
	case 2: // XENVER_compile_info: compiler, by, domain, date (64 bytes each)
		b, err := mem.Bytes(args[1], xenverCompileInfoLen)
		if err != nil {
			return 0, err
		}
		clear(b)
		copy(b, "gcc (xensim)")
		copy(b[128:], "xensim")
		return 0, nil
	case 5: // XENVER_platform_parameters: virt_start
		b, err := mem.Bytes(args[1], xenverPlatformLen)
		if err != nil {
			return 0, err
		}
		copy(b, []byte{0, 0, 0, 0, 0, 0x80, 0xff, 0xff}) // HYPERVISOR_VIRT_START
		return 0, nil
	case 6: // XENVER_get_features: {submap_idx, submap}
		b, err := mem.Bytes(args[1], xenverFeaturesLen)
		if err != nil {
			return 0, err
		}
		if b[0]|b[1]|b[2]|b[3] == 0 {
			copy(b[4:], []byte{0xe5, 0x1f, 0, 0}) // a PV dom0's usual feature bits
		} else {
			clear(b[4:])
		}
		return 0, nil
	}
	return 0, hypercall.ENOSYS
}

// copyString writes str and its NUL into the size-byte buffer at addr, as
// Xen's copy_to_guest of a fixed char array does (the whole array).
func (s *Sim) copyString(mem *hypercalltest.Memory, addr uint64, str string, size int) error {
	b, err := mem.Bytes(addr, size)
	if err != nil {
		return err
	}
	clear(b)
	copy(b[:size-1], str)
	return nil
}
