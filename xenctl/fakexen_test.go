package xenctl

import (
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/hypercall/hypercalltest"
)

// fakeXen is a minimal hypervisor for this package's own tests: version
// strings, a physinfo reply, a domain list and a tmem probe answer. The
// full simulator lives in hypercall/xensim.
type fakeXen struct {
	t         testing.TB
	ver       Version
	iface     uint32 // accepted sysctl interface version
	physinfo  []byte // raw 128-byte union to return
	domains   []DomainInfo
	tmemErrno hypercall.Errno // answer to tmem_op; 0 = success with tmemRC
	tmemRC    uint64
	sysctlErr hypercall.Errno // forced answer to every sysctl
	lastOp    []byte          // last tmem_op bytes seen
}

func (f *fakeXen) caller() *hypercalltest.Caller { return hypercalltest.New(f.handle) }

func (f *fakeXen) client(t testing.TB) *Client {
	t.Helper()
	cl, err := New(f.caller(), nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func (f *fakeXen) handle(op hypercall.Op, args hypercall.Args, mem *hypercalltest.Memory) (uint64, error) {
	switch op {
	case hypercall.OpXenVersion:
		var s string
		switch args[0] {
		case hypercall.XENVER_version:
			return uint64(f.ver.Major)<<16 | uint64(f.ver.Minor), nil
		case hypercall.XENVER_extraversion:
			s = f.ver.Extra
		case hypercall.XENVER_capabilities:
			s = "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64 "
		case hypercall.XENVER_commandline:
			s = "console=com1 dom0_mem=512M"
		default:
			return 0, hypercall.ENOSYS
		}
		b, err := mem.Bytes(args[1], len(s)+1)
		if err != nil {
			return 0, err
		}
		copy(b, s+"\x00")
		return 0, nil
	case hypercall.OpSysctl:
		s, err := hypercalltest.View[hypercall.Sysctl](mem, args[0])
		if err != nil {
			return 0, err
		}
		if f.sysctlErr != 0 {
			return 0, f.sysctlErr
		}
		if s.InterfaceVersion != f.iface {
			return 0, hypercall.EACCES
		}
		switch s.Cmd {
		case hypercall.XEN_SYSCTL_physinfo:
			copy(s.U[:], f.physinfo)
			return 0, nil
		case hypercall.XEN_SYSCTL_getdomaininfolist:
			return f.domainList(s, mem)
		}
		return 0, hypercall.ENOSYS
	case hypercall.OpTmem:
		b, err := mem.Bytes(args[0], 40)
		if err != nil {
			return 0, err
		}
		f.lastOp = append(f.lastOp[:0], b...)
		if f.tmemErrno != 0 {
			return 0, f.tmemErrno
		}
		return f.tmemRC, nil
	}
	return 0, hypercall.ENOSYS
}

func (f *fakeXen) domainList(s *hypercall.Sysctl, mem *hypercalltest.Memory) (uint64, error) {
	req, _ := hypercall.ViewBytes[hypercall.SysctlGetDomainInfoList](s.U[:], 0)
	size := domainInfoSize(f.ver)
	out, err := mem.Bytes(req.Buffer, int(req.MaxDomains)*size)
	if err != nil {
		return 0, err
	}
	n := uint32(0)
	for _, d := range f.domains {
		if d.ID < req.FirstDomain || n == req.MaxDomains {
			continue
		}
		encodeDomainInfo(f.ver, out[int(n)*size:], d)
		n++
	}
	req.NumDomains = n
	return 0, nil
}

// encodeDomainInfo writes d in the record layout of release v, field by
// field at the offsets of the C struct (independently of the decoder).
func encodeDomainInfo(v Version, b []byte, d DomainInfo) {
	le := binary.LittleEndian
	le.PutUint16(b[0:], d.ID)
	le.PutUint32(b[4:], d.Flags)
	le.PutUint64(b[8:], d.TotPages)
	le.PutUint64(b[16:], d.MaxPages)
	switch {
	case !v.AtLeast(4, 2): // shr 24, sif 32, cpu 40, vcpus 48, maxvcpu 52, ssid 56, handle 60, pool 76
		le.PutUint64(b[24:], d.ShrPages)
		le.PutUint64(b[40:], d.CPUTimeNs)
		le.PutUint32(b[48:], d.OnlineVCPUs)
		le.PutUint32(b[52:], d.MaxVCPUID)
		copy(b[60:76], d.Handle[:])
		le.PutUint32(b[76:], d.CPUPool)
	case !v.AtLeast(4, 3): // shr 24, paged 32, sif 40, cpu 48, vcpus 56, handle 68, pool 84
		le.PutUint64(b[24:], d.ShrPages)
		le.PutUint64(b[48:], d.CPUTimeNs)
		le.PutUint32(b[56:], d.OnlineVCPUs)
		le.PutUint32(b[60:], d.MaxVCPUID)
		copy(b[68:84], d.Handle[:])
		le.PutUint32(b[84:], d.CPUPool)
	default: // outstanding 24, shr 32, paged 40, sif 48, cpu 56, vcpus 64, handle 76, pool 92
		le.PutUint64(b[24:], d.OutstandingPages)
		le.PutUint64(b[32:], d.ShrPages)
		le.PutUint64(b[56:], d.CPUTimeNs)
		le.PutUint32(b[64:], d.OnlineVCPUs)
		le.PutUint32(b[68:], d.MaxVCPUID)
		copy(b[76:92], d.Handle[:])
		le.PutUint32(b[92:], d.CPUPool)
	}
}

// Raw struct xen_sysctl replies of XEN_SYSCTL_physinfo from real
// hypervisors (reference/xen-golden, stage-1 transcripts).
const (
	rawPhysinfo417 = "030000001500000001000000010000000100000000000000010000003f0000007f841e000b03000000000000000000007fff0700000000007ae805000000000000000000000000000000000000000000dfff070000000000fdf3cb0f0b32d8f6000850ec7500000005000000a94388010c0200000000000000000000000000000000000000000000"
	rawPhysinfo412 = "030000001200000001000000010000000100000000000000010000003f00000022911e00030000007fff07000000000059e505000000000000000000000000000000000000000000dfff070000000000fdf3cb0f0b32d8f6000850ec7500000005000000a94388010c00000000000000000000000000000000000000000000000000000000000000"
)

// physinfoUnion returns the 128-byte union of a raw 136-byte reply.
func physinfoUnion(t testing.TB, raw string) []byte {
	t.Helper()
	b, err := hex.DecodeString(raw)
	if err != nil || len(b) != 136 {
		t.Fatalf("bad raw physinfo (%d bytes): %v", len(b), err)
	}
	return b[8:]
}
