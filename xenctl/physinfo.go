package xenctl

import "github.com/xentmem/xentmem/hypercall"

// Physinfo is the host's physical information (XEN_SYSCTL_physinfo),
// decoded from whichever layout the running release uses.
type Physinfo struct {
	ThreadsPerCore   uint32
	CoresPerSocket   uint32
	NrCPUs           uint32
	MaxCPUID         uint32
	NrNodes          uint32 // 0 on Xen 4.0, which does not report it
	MaxNodeID        uint32
	CPUKHz           uint32
	Capabilities     uint32
	ArchCapabilities uint32 // 4.17+
	TotalPages       uint64
	// FreePages is Xen's free heap. It excludes pages held by tmem: add
	// QueryFreeableMiB for what tmem could give back.
	FreePages        uint64
	ScrubPages       uint64
	OutstandingPages uint64 // 4.3+: domain claims not yet allocated
	MaxMFN           uint64 // 4.10+
	HWCap            [8]uint32
}

// PageKiB is the size of a Xen page in KiB (x86).
const PageKiB = 4

// TotalKiB returns TotalPages in KiB.
func (p Physinfo) TotalKiB() uint64 { return p.TotalPages * PageKiB }

// FreeKiB returns FreePages in KiB.
func (p Physinfo) FreeKiB() uint64 { return p.FreePages * PageKiB }

// physinfoLayout names the struct xen_sysctl_physinfo layout of a release.
type physinfoLayout int

const (
	physinfo40 physinfoLayout = iota
	physinfo41
	physinfo43
	physinfo410
	physinfo417
)

func physinfoLayoutOf(v Version) physinfoLayout {
	switch {
	case !v.AtLeast(4, 1):
		return physinfo40
	case !v.AtLeast(4, 3):
		return physinfo41
	case !v.AtLeast(4, 10):
		return physinfo43
	case !v.AtLeast(4, 17):
		return physinfo410
	}
	return physinfo417
}

// Physinfo returns the host's physical information.
func (cl *Client) Physinfo() (Physinfo, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	u, err := cl.sysctlPrepare(opPhysinfo, hypercall.XEN_SYSCTL_physinfo)
	if err != nil {
		return Physinfo{}, err
	}
	if _, err := cl.sysctlIssue(opPhysinfo, kindSysctl); err != nil {
		return Physinfo{}, err
	}
	return DecodePhysinfo(cl.ver, u)
}

// DecodePhysinfo decodes a physinfo union (the 128 bytes at offset 8 of a
// struct xen_sysctl) in the layout of release v.
func DecodePhysinfo(v Version, u []byte) (Physinfo, error) {
	var p Physinfo
	switch physinfoLayoutOf(v) {
	case physinfo40:
		s, err := hypercall.ViewBytes[hypercall.Physinfo40](u, 0)
		if err != nil {
			return p, err
		}
		p = Physinfo{ThreadsPerCore: s.ThreadsPerCore, CoresPerSocket: s.CoresPerSocket, NrCPUs: s.NrCPUs,
			MaxCPUID: s.MaxCPUID, MaxNodeID: s.MaxNodeID, CPUKHz: s.CPUKHz, Capabilities: s.Capabilities,
			TotalPages: s.TotalPages, FreePages: s.FreePages, ScrubPages: s.ScrubPages, HWCap: s.HWCap}
	case physinfo41:
		s, err := hypercall.ViewBytes[hypercall.Physinfo41](u, 0)
		if err != nil {
			return p, err
		}
		p = Physinfo{ThreadsPerCore: s.ThreadsPerCore, CoresPerSocket: s.CoresPerSocket, NrCPUs: s.NrCPUs,
			MaxCPUID: s.MaxCPUID, NrNodes: s.NrNodes, MaxNodeID: s.MaxNodeID, CPUKHz: s.CPUKHz,
			Capabilities: s.Capabilities, TotalPages: s.TotalPages, FreePages: s.FreePages,
			ScrubPages: s.ScrubPages, HWCap: s.HWCap}
	case physinfo43:
		s, err := hypercall.ViewBytes[hypercall.Physinfo43](u, 0)
		if err != nil {
			return p, err
		}
		p = Physinfo{ThreadsPerCore: s.ThreadsPerCore, CoresPerSocket: s.CoresPerSocket, NrCPUs: s.NrCPUs,
			MaxCPUID: s.MaxCPUID, NrNodes: s.NrNodes, MaxNodeID: s.MaxNodeID, CPUKHz: s.CPUKHz,
			Capabilities: s.Capabilities, TotalPages: s.TotalPages, FreePages: s.FreePages,
			ScrubPages: s.ScrubPages, OutstandingPages: s.OutstandingPages, HWCap: s.HWCap}
	case physinfo410:
		s, err := hypercall.ViewBytes[hypercall.Physinfo410](u, 0)
		if err != nil {
			return p, err
		}
		p = Physinfo{ThreadsPerCore: s.ThreadsPerCore, CoresPerSocket: s.CoresPerSocket, NrCPUs: s.NrCPUs,
			MaxCPUID: s.MaxCPUID, NrNodes: s.NrNodes, MaxNodeID: s.MaxNodeID, CPUKHz: s.CPUKHz,
			Capabilities: s.Capabilities, TotalPages: s.TotalPages, FreePages: s.FreePages,
			ScrubPages: s.ScrubPages, OutstandingPages: s.OutstandingPages, MaxMFN: s.MaxMFN, HWCap: s.HWCap}
	default:
		s, err := hypercall.ViewBytes[hypercall.Physinfo417](u, 0)
		if err != nil {
			return p, err
		}
		p = Physinfo{ThreadsPerCore: s.ThreadsPerCore, CoresPerSocket: s.CoresPerSocket, NrCPUs: s.NrCPUs,
			MaxCPUID: s.MaxCPUID, NrNodes: s.NrNodes, MaxNodeID: s.MaxNodeID, CPUKHz: s.CPUKHz,
			Capabilities: s.Capabilities, ArchCapabilities: s.ArchCapabilities, TotalPages: s.TotalPages,
			FreePages: s.FreePages, ScrubPages: s.ScrubPages, OutstandingPages: s.OutstandingPages,
			MaxMFN: s.MaxMFN, HWCap: s.HWCap}
	}
	return p, nil
}
