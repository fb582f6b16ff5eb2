package hypercall

import "structs"

// struct xen_domctl_getdomaininfo, the record XEN_SYSCTL_getdomaininfolist
// writes. The first fields (domain, flags, tot_pages, max_pages) sit at the
// same offsets in every release; later fields and the record size changed.

// DomainInfo40 is the Xen 4.0–4.1 record (80 bytes).
type DomainInfo40 struct {
	_               structs.HostLayout
	Domain          uint16
	_               [2]byte
	Flags           uint32
	TotPages        uint64
	MaxPages        uint64
	ShrPages        uint64
	SharedInfoFrame uint64
	CPUTime         uint64
	NrOnlineVCPUs   uint32
	MaxVCPUID       uint32
	SSIDRef         uint32
	Handle          [16]byte
	CPUPool         uint32
}

// DomainInfo42 is the Xen 4.2 record (88 bytes): adds paged_pages.
type DomainInfo42 struct {
	_               structs.HostLayout
	Domain          uint16
	_               [2]byte
	Flags           uint32
	TotPages        uint64
	MaxPages        uint64
	ShrPages        uint64
	PagedPages      uint64
	SharedInfoFrame uint64
	CPUTime         uint64
	NrOnlineVCPUs   uint32
	MaxVCPUID       uint32
	SSIDRef         uint32
	Handle          [16]byte
	CPUPool         uint32
}

// DomainInfo43 is the Xen 4.3–4.15 record (96 bytes): adds outstanding_pages.
type DomainInfo43 struct {
	_                structs.HostLayout
	Domain           uint16
	_                [2]byte
	Flags            uint32
	TotPages         uint64
	MaxPages         uint64
	OutstandingPages uint64
	ShrPages         uint64
	PagedPages       uint64
	SharedInfoFrame  uint64
	CPUTime          uint64
	NrOnlineVCPUs    uint32
	MaxVCPUID        uint32
	SSIDRef          uint32
	Handle           [16]byte
	CPUPool          uint32
}

// DomainInfo416 is the Xen 4.16 record (104 bytes): adds gpaddr_bits.
type DomainInfo416 struct {
	DomainInfo43
	GPAddrBits uint8
	_          [7]byte
}

// DomainInfo417 is the Xen 4.17+ record (112 bytes): adds the x86
// arch_config (emulation_flags, misc_flags).
type DomainInfo417 struct {
	DomainInfo43
	GPAddrBits     uint8
	_              [7]byte
	EmulationFlags uint32
	MiscFlags      uint32
}

// Domain flags (XEN_DOMINF_*).
const (
	XEN_DOMINF_dying         = 1 << 0
	XEN_DOMINF_hvm_guest     = 1 << 1
	XEN_DOMINF_shutdown      = 1 << 2
	XEN_DOMINF_paused        = 1 << 3
	XEN_DOMINF_blocked       = 1 << 4
	XEN_DOMINF_running       = 1 << 5
	XEN_DOMINF_debugged      = 1 << 6
	XEN_DOMINF_xs_domain     = 1 << 7
	XEN_DOMINF_hap           = 1 << 8
	XEN_DOMINF_shutdownmask  = 255
	XEN_DOMINF_shutdownshift = 16
)
