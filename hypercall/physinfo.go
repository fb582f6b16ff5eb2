package hypercall

import "structs"

// struct xen_sysctl_physinfo changed layout four times; one Go type per
// layout. Each sits at [SysctlUnionOffset] in a [Sysctl].

// Physinfo40 is the Xen 4.0 layout (104 bytes).
type Physinfo40 struct {
	_              structs.HostLayout
	ThreadsPerCore uint32
	CoresPerSocket uint32
	NrCPUs         uint32
	MaxNodeID      uint32
	CPUKHz         uint32
	_              [4]byte
	TotalPages     uint64
	FreePages      uint64
	ScrubPages     uint64
	HWCap          [8]uint32
	MaxCPUID       uint32
	_              [4]byte
	CPUToNode      uint64 // guest handle
	Capabilities   uint32
	_              [4]byte
}

// Physinfo41 is the Xen 4.1–4.2 layout (96 bytes).
type Physinfo41 struct {
	_              structs.HostLayout
	ThreadsPerCore uint32
	CoresPerSocket uint32
	NrCPUs         uint32
	MaxCPUID       uint32
	NrNodes        uint32
	MaxNodeID      uint32
	CPUKHz         uint32
	_              [4]byte
	TotalPages     uint64
	FreePages      uint64
	ScrubPages     uint64
	HWCap          [8]uint32
	Capabilities   uint32
	_              [4]byte
}

// Physinfo43 is the Xen 4.3–4.9 layout (104 bytes).
type Physinfo43 struct {
	_                structs.HostLayout
	ThreadsPerCore   uint32
	CoresPerSocket   uint32
	NrCPUs           uint32
	MaxCPUID         uint32
	NrNodes          uint32
	MaxNodeID        uint32
	CPUKHz           uint32
	_                [4]byte
	TotalPages       uint64
	FreePages        uint64
	ScrubPages       uint64
	OutstandingPages uint64
	HWCap            [8]uint32
	Capabilities     uint32
	_                [4]byte
}

// Physinfo410 is the Xen 4.10–4.16 layout (104 bytes).
type Physinfo410 struct {
	_                structs.HostLayout
	ThreadsPerCore   uint32
	CoresPerSocket   uint32
	NrCPUs           uint32
	MaxCPUID         uint32
	NrNodes          uint32
	MaxNodeID        uint32
	CPUKHz           uint32
	Capabilities     uint32
	TotalPages       uint64
	FreePages        uint64
	ScrubPages       uint64
	OutstandingPages uint64
	MaxMFN           uint64
	HWCap            [8]uint32
}

// Physinfo417 is the Xen 4.17–4.19 layout (112 bytes).
type Physinfo417 struct {
	_                structs.HostLayout
	ThreadsPerCore   uint32
	CoresPerSocket   uint32
	NrCPUs           uint32
	MaxCPUID         uint32
	NrNodes          uint32
	MaxNodeID        uint32
	CPUKHz           uint32
	Capabilities     uint32
	ArchCapabilities uint32
	_                [4]byte
	TotalPages       uint64
	FreePages        uint64
	ScrubPages       uint64
	OutstandingPages uint64
	MaxMFN           uint64
	HWCap            [8]uint32
}
