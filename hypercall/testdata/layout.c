/* Prints sizeof/offsetof of the structures Debian's libxen-dev (Xen 4.17)
 * headers carry, named after the Go layouts in structs_test.go.
 * Output: "<layout> <Go field> <offset>" and "<layout> SIZE <size>". */
#define __XEN_TOOLS__ 1
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <xen/xen.h>
#include <xen/sysctl.h>
#include <xen/domctl.h>
#include <xen/tmem.h>
#include <xen/sys/privcmd.h>

#define S(name, type) printf("%s SIZE %zu\n", name, sizeof(type))
#define F(name, gofield, type, cfield) \
	printf("%s %s %zu\n", name, gofield, offsetof(type, cfield))

int main(void)
{
	S("privcmd_hypercall", struct privcmd_hypercall);
	F("privcmd_hypercall", "Op", struct privcmd_hypercall, op);
	F("privcmd_hypercall", "Arg", struct privcmd_hypercall, arg);

	S("xen_sysctl", struct xen_sysctl);
	F("xen_sysctl", "Cmd", struct xen_sysctl, cmd);
	F("xen_sysctl", "InterfaceVersion", struct xen_sysctl, interface_version);
	F("xen_sysctl", "U", struct xen_sysctl, u);

	S("physinfo(4.17)", struct xen_sysctl_physinfo);
	F("physinfo(4.17)", "ThreadsPerCore", struct xen_sysctl_physinfo, threads_per_core);
	F("physinfo(4.17)", "CoresPerSocket", struct xen_sysctl_physinfo, cores_per_socket);
	F("physinfo(4.17)", "NrCPUs", struct xen_sysctl_physinfo, nr_cpus);
	F("physinfo(4.17)", "MaxCPUID", struct xen_sysctl_physinfo, max_cpu_id);
	F("physinfo(4.17)", "NrNodes", struct xen_sysctl_physinfo, nr_nodes);
	F("physinfo(4.17)", "MaxNodeID", struct xen_sysctl_physinfo, max_node_id);
	F("physinfo(4.17)", "CPUKHz", struct xen_sysctl_physinfo, cpu_khz);
	F("physinfo(4.17)", "Capabilities", struct xen_sysctl_physinfo, capabilities);
	F("physinfo(4.17)", "ArchCapabilities", struct xen_sysctl_physinfo, arch_capabilities);
	F("physinfo(4.17)", "TotalPages", struct xen_sysctl_physinfo, total_pages);
	F("physinfo(4.17)", "FreePages", struct xen_sysctl_physinfo, free_pages);
	F("physinfo(4.17)", "ScrubPages", struct xen_sysctl_physinfo, scrub_pages);
	F("physinfo(4.17)", "OutstandingPages", struct xen_sysctl_physinfo, outstanding_pages);
	F("physinfo(4.17)", "MaxMFN", struct xen_sysctl_physinfo, max_mfn);
	F("physinfo(4.17)", "HWCap", struct xen_sysctl_physinfo, hw_cap);

	S("xen_sysctl_getdomaininfolist", struct xen_sysctl_getdomaininfolist);
	F("xen_sysctl_getdomaininfolist", "FirstDomain", struct xen_sysctl_getdomaininfolist, first_domain);
	F("xen_sysctl_getdomaininfolist", "MaxDomains", struct xen_sysctl_getdomaininfolist, max_domains);
	F("xen_sysctl_getdomaininfolist", "Buffer", struct xen_sysctl_getdomaininfolist, buffer);
	F("xen_sysctl_getdomaininfolist", "NumDomains", struct xen_sysctl_getdomaininfolist, num_domains);

	S("domaininfo(4.17)", struct xen_domctl_getdomaininfo);
	F("domaininfo(4.17)", "Domain", struct xen_domctl_getdomaininfo, domain);
	F("domaininfo(4.17)", "Flags", struct xen_domctl_getdomaininfo, flags);
	F("domaininfo(4.17)", "TotPages", struct xen_domctl_getdomaininfo, tot_pages);
	F("domaininfo(4.17)", "MaxPages", struct xen_domctl_getdomaininfo, max_pages);
	F("domaininfo(4.17)", "OutstandingPages", struct xen_domctl_getdomaininfo, outstanding_pages);
	F("domaininfo(4.17)", "ShrPages", struct xen_domctl_getdomaininfo, shr_pages);
	F("domaininfo(4.17)", "PagedPages", struct xen_domctl_getdomaininfo, paged_pages);
	F("domaininfo(4.17)", "SharedInfoFrame", struct xen_domctl_getdomaininfo, shared_info_frame);
	F("domaininfo(4.17)", "CPUTime", struct xen_domctl_getdomaininfo, cpu_time);
	F("domaininfo(4.17)", "NrOnlineVCPUs", struct xen_domctl_getdomaininfo, nr_online_vcpus);
	F("domaininfo(4.17)", "MaxVCPUID", struct xen_domctl_getdomaininfo, max_vcpu_id);
	F("domaininfo(4.17)", "SSIDRef", struct xen_domctl_getdomaininfo, ssidref);
	F("domaininfo(4.17)", "Handle", struct xen_domctl_getdomaininfo, handle);
	F("domaininfo(4.17)", "CPUPool", struct xen_domctl_getdomaininfo, cpupool);
	F("domaininfo(4.17)", "GPAddrBits", struct xen_domctl_getdomaininfo, gpaddr_bits);
	F("domaininfo(4.17)", "EmulationFlags", struct xen_domctl_getdomaininfo, arch_config.emulation_flags);
	F("domaininfo(4.17)", "MiscFlags", struct xen_domctl_getdomaininfo, arch_config.misc_flags);

	/* tmem.h still carries struct tmem_op (56 bytes) for interface < 0x41300. */
	S("tmem_op", struct tmem_op);
	F("tmem_op", "Cmd", struct tmem_op, cmd);
	F("tmem_op", "PoolID", struct tmem_op, pool_id);
	F("tmem_op", "U", struct tmem_op, u);
	F("tmem_op.u.creat", "UUID", struct tmem_op, u.creat.uuid);
	F("tmem_op.u.creat", "Flags", struct tmem_op, u.creat.flags);
	F("tmem_op.u.creat", "Arg1", struct tmem_op, u.creat.arg1);
	F("tmem_op.u.gen", "OID", struct tmem_op, u.gen.oid);
	F("tmem_op.u.gen", "Index", struct tmem_op, u.gen.index);
	F("tmem_op.u.gen", "TmemOffset", struct tmem_op, u.gen.tmem_offset);
	F("tmem_op.u.gen", "PfnOffset", struct tmem_op, u.gen.pfn_offset);
	F("tmem_op.u.gen", "Len", struct tmem_op, u.gen.len);
	F("tmem_op.u.gen", "CMFN", struct tmem_op, u.gen.cmfn);
	return 0;
}
