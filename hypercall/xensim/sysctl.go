package xensim

import (
	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/hypercall/hypercalltest"
)

const sysctlSize = 136

// sysctl serves __HYPERVISOR_sysctl the way xen/common/sysctl.c does: copy
// the 136-byte struct in (EFAULT), check interface_version (EACCES, before
// the command is looked at), check privilege (EPERM), run the command on
// the copy, and copy the struct back.
func (s *Sim) sysctl(d *domain, addr uint64, mem *hypercalltest.Memory) (int64, error) {
	b, err := mem.Bytes(addr, sysctlSize)
	if err != nil {
		return 0, err
	}
	opb := s.sysctlCopy[:]
	copy(opb, b)
	op, _ := hypercall.ViewBytes[hypercall.Sysctl](opb, 0)
	if op.InterfaceVersion != s.rel.iface {
		return 0, hypercall.EACCES
	}
	if d.id != 0 {
		return 0, hypercall.EPERM
	}
	var rc int64
	switch op.Cmd {
	case hypercall.XEN_SYSCTL_physinfo:
		s.physinfo(op.U[:])
	case hypercall.XEN_SYSCTL_getdomaininfolist:
		rc, err = s.getDomainInfoList(op, mem)
	case hypercall.XEN_SYSCTL_tmem_op:
		if s.rel.gen < genB || s.cfg.Tmem == TmemNotBuilt {
			return 0, hypercall.ENOSYS
		}
		rc = int64(s.tmemSysctl(op.U[:], mem))
	default:
		return 0, hypercall.ENOSYS
	}
	if err != nil {
		return 0, err
	}
	copy(b, opb)
	return rc, nil
}

// physinfo fills struct xen_sysctl_physinfo in the release's layout.
func (s *Sim) physinfo(u []byte) {
	c := &s.cfg
	clear(u)
	free := s.heap.free
	switch {
	case !s.rel.atLeast(4, 1):
		p, _ := hypercall.ViewBytes[hypercall.Physinfo40](u, 0)
		*p = hypercall.Physinfo40{ThreadsPerCore: 1, CoresPerSocket: 1, NrCPUs: c.NrCPUs, MaxNodeID: 0,
			CPUKHz: c.CPUKHz, TotalPages: c.TotalPages, FreePages: free, HWCap: c.HWCap,
			MaxCPUID: c.NrCPUs - 1, Capabilities: c.PhysCapabilities}
	case !s.rel.atLeast(4, 3):
		p, _ := hypercall.ViewBytes[hypercall.Physinfo41](u, 0)
		*p = hypercall.Physinfo41{ThreadsPerCore: 1, CoresPerSocket: 1, NrCPUs: c.NrCPUs, MaxCPUID: c.NrCPUs - 1,
			NrNodes: 1, MaxNodeID: 63, CPUKHz: c.CPUKHz, TotalPages: c.TotalPages, FreePages: free,
			HWCap: c.HWCap, Capabilities: c.PhysCapabilities}
	case !s.rel.atLeast(4, 10):
		p, _ := hypercall.ViewBytes[hypercall.Physinfo43](u, 0)
		*p = hypercall.Physinfo43{ThreadsPerCore: 1, CoresPerSocket: 1, NrCPUs: c.NrCPUs, MaxCPUID: c.NrCPUs - 1,
			NrNodes: 1, MaxNodeID: 63, CPUKHz: c.CPUKHz, TotalPages: c.TotalPages, FreePages: free,
			HWCap: c.HWCap, Capabilities: c.PhysCapabilities}
	case !s.rel.atLeast(4, 17):
		p, _ := hypercall.ViewBytes[hypercall.Physinfo410](u, 0)
		*p = hypercall.Physinfo410{ThreadsPerCore: 1, CoresPerSocket: 1, NrCPUs: c.NrCPUs, MaxCPUID: c.NrCPUs - 1,
			NrNodes: 1, MaxNodeID: 63, CPUKHz: c.CPUKHz, Capabilities: c.PhysCapabilities,
			TotalPages: c.TotalPages, FreePages: free, MaxMFN: c.MaxMFN, HWCap: c.HWCap}
	default:
		p, _ := hypercall.ViewBytes[hypercall.Physinfo417](u, 0)
		*p = hypercall.Physinfo417{ThreadsPerCore: 1, CoresPerSocket: 1, NrCPUs: c.NrCPUs, MaxCPUID: c.NrCPUs - 1,
			NrNodes: 1, MaxNodeID: 63, CPUKHz: c.CPUKHz, Capabilities: c.PhysCapabilities,
			TotalPages: c.TotalPages, FreePages: free, MaxMFN: c.MaxMFN, HWCap: c.HWCap}
	}
}

// Physinfo returns the values physinfo reports now: total and free pages.
func (s *Sim) Physinfo() (totalPages, freePages uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.TotalPages, s.heap.free
}
