package xenctl

import (
	"fmt"

	"github.com/xentmem/xentmem/hypercall"
)

// DomainInfo is one domain as Xen's domain-info list reports it.
type DomainInfo struct {
	ID               uint16
	Flags            uint32 // XEN_DOMINF_* bits
	TotPages         uint64 // pages the domain holds now
	MaxPages         uint64
	OutstandingPages uint64 // 4.3+
	ShrPages         uint64
	CPUTimeNs        uint64
	OnlineVCPUs      uint32
	MaxVCPUID        uint32
	Handle           [16]byte // the domain's UUID
	CPUPool          uint32
}

// MemoryKiB returns the memory the domain holds, in KiB.
func (d DomainInfo) MemoryKiB() uint64 { return d.TotPages * PageKiB }

// MaxMemoryKiB returns the domain's maximum, in KiB.
func (d DomainInfo) MaxMemoryKiB() uint64 { return d.MaxPages * PageKiB }

// UUID returns the handle in the usual 8-4-4-4-12 form.
func (d DomainInfo) UUID() string {
	h := d.Handle
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// State returns the names of the state flags that are set, in xl's order:
// running, blocked, paused, shutdown, dying; plus "hvm" or "pv".
func (d DomainInfo) State() []string {
	var s []string
	for _, f := range []struct {
		bit  uint32
		name string
	}{
		{hypercall.XEN_DOMINF_running, "running"},
		{hypercall.XEN_DOMINF_blocked, "blocked"},
		{hypercall.XEN_DOMINF_paused, "paused"},
		{hypercall.XEN_DOMINF_shutdown, "shutdown"},
		{hypercall.XEN_DOMINF_dying, "dying"},
	} {
		if d.Flags&f.bit != 0 {
			s = append(s, f.name)
		}
	}
	return s
}

// HVM reports whether the domain is an HVM guest.
func (d DomainInfo) HVM() bool { return d.Flags&hypercall.XEN_DOMINF_hvm_guest != 0 }

// domainInfoSize returns the record size of struct xen_domctl_getdomaininfo
// for release v.
func domainInfoSize(v Version) int {
	switch {
	case !v.AtLeast(4, 2):
		return hypercall.SizeOf[hypercall.DomainInfo40]()
	case !v.AtLeast(4, 3):
		return hypercall.SizeOf[hypercall.DomainInfo42]()
	case !v.AtLeast(4, 16):
		return hypercall.SizeOf[hypercall.DomainInfo43]()
	case !v.AtLeast(4, 17):
		return hypercall.SizeOf[hypercall.DomainInfo416]()
	}
	return hypercall.SizeOf[hypercall.DomainInfo417]()
}

// DecodeDomainInfo decodes one record in the layout of release v.
func DecodeDomainInfo(v Version, rec []byte) (DomainInfo, error) {
	if !v.AtLeast(4, 2) {
		s, err := hypercall.ViewBytes[hypercall.DomainInfo40](rec, 0)
		if err != nil {
			return DomainInfo{}, err
		}
		return DomainInfo{ID: s.Domain, Flags: s.Flags, TotPages: s.TotPages, MaxPages: s.MaxPages,
			ShrPages: s.ShrPages, CPUTimeNs: s.CPUTime, OnlineVCPUs: s.NrOnlineVCPUs,
			MaxVCPUID: s.MaxVCPUID, Handle: s.Handle, CPUPool: s.CPUPool}, nil
	}
	if !v.AtLeast(4, 3) {
		s, err := hypercall.ViewBytes[hypercall.DomainInfo42](rec, 0)
		if err != nil {
			return DomainInfo{}, err
		}
		return DomainInfo{ID: s.Domain, Flags: s.Flags, TotPages: s.TotPages, MaxPages: s.MaxPages,
			ShrPages: s.ShrPages, CPUTimeNs: s.CPUTime, OnlineVCPUs: s.NrOnlineVCPUs,
			MaxVCPUID: s.MaxVCPUID, Handle: s.Handle, CPUPool: s.CPUPool}, nil
	}
	s, err := hypercall.ViewBytes[hypercall.DomainInfo43](rec, 0)
	if err != nil {
		return DomainInfo{}, err
	}
	return DomainInfo{ID: s.Domain, Flags: s.Flags, TotPages: s.TotPages, MaxPages: s.MaxPages,
		OutstandingPages: s.OutstandingPages, ShrPages: s.ShrPages, CPUTimeNs: s.CPUTime,
		OnlineVCPUs: s.NrOnlineVCPUs, MaxVCPUID: s.MaxVCPUID, Handle: s.Handle, CPUPool: s.CPUPool}, nil
}

// domainBatch is how many records one getdomaininfolist call asks for.
const domainBatch = 256

// Domains returns every domain Xen knows, in id order: Xen's own list, which
// includes guests libvirt never saw (xl create).
func (cl *Client) Domains() ([]DomainInfo, error) {
	size := domainInfoSize(cl.ver)
	buf, err := cl.c.Alloc(size * domainBatch)
	if err != nil {
		return nil, fmt.Errorf("xenctl: %s: %w", opDomainList, err)
	}
	defer buf.Close()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	var out []DomainInfo
	first := uint16(0)
	for {
		u, err := cl.sysctlPrepare(opDomainList, hypercall.XEN_SYSCTL_getdomaininfolist)
		if err != nil {
			return nil, err
		}
		req, _ := hypercall.ViewBytes[hypercall.SysctlGetDomainInfoList](u, 0)
		req.FirstDomain = first
		req.MaxDomains = domainBatch
		req.Buffer = buf.Addr()
		if _, err := cl.sysctlIssue(opDomainList, kindSysctl); err != nil {
			return nil, err
		}
		n := int(req.NumDomains)
		if n > domainBatch {
			return nil, fmt.Errorf("xenctl: %s: Xen reported %d domains for a batch of %d", opDomainList, n, domainBatch)
		}
		for i := 0; i < n; i++ {
			d, err := DecodeDomainInfo(cl.ver, buf.Bytes()[i*size:(i+1)*size])
			if err != nil {
				return nil, err
			}
			if len(out) > 0 && d.ID <= out[len(out)-1].ID {
				return nil, fmt.Errorf("xenctl: %s: domain ids out of order (%d after %d): record layout does not match Xen %s", opDomainList, d.ID, out[len(out)-1].ID, cl.ver)
			}
			out = append(out, d)
		}
		if n < domainBatch || out[len(out)-1].ID >= 0x7FEF {
			return out, nil
		}
		first = out[len(out)-1].ID + 1
	}
}
