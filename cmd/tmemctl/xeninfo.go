package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/xenctl"
)

// xenInfo is the documented JSON object of `tmemctl xen-info -o json`
// (docs/tmemctl.8).
type xenInfo struct {
	Hypervisor struct {
		Version      string `json:"version"`
		Major        int    `json:"major"`
		Minor        int    `json:"minor"`
		Extra        string `json:"extra"`
		Capabilities string `json:"capabilities"`
		Commandline  string `json:"commandline"`
	} `json:"hypervisor"`
	SysctlInterfaceVersion uint32 `json:"sysctl_interface_version"`
	Memory                 struct {
		TotalPages       uint64 `json:"total_pages"`
		FreePages        uint64 `json:"free_pages"`
		ScrubPages       uint64 `json:"scrub_pages"`
		OutstandingPages uint64 `json:"outstanding_pages"`
		TotalKiB         uint64 `json:"total_kib"`
		FreeKiB          uint64 `json:"free_kib"`
	} `json:"memory"`
	CPUs struct {
		NrCPUs  uint32 `json:"nr_cpus"`
		NrNodes uint32 `json:"nr_nodes"`
		CPUKHz  uint32 `json:"cpu_khz"`
	} `json:"cpus"`
	Domains []xenInfoDomain `json:"domains"`
	Tmem    xenInfoTmem     `json:"tmem"`
}

type xenInfoDomain struct {
	ID           uint16   `json:"id"`
	UUID         string   `json:"uuid"`
	TotPages     uint64   `json:"tot_pages"`
	MaxPages     uint64   `json:"max_pages"`
	MemoryKiB    uint64   `json:"memory_kib"`
	MaxMemoryKiB uint64   `json:"max_memory_kib"`
	VCPUs        uint32   `json:"vcpus"`
	State        []string `json:"state"`
}

type xenInfoTmem struct {
	Available   bool   `json:"available"`
	Generation  string `json:"generation"`
	Releases    string `json:"releases,omitempty"`
	Errno       string `json:"errno,omitempty"`
	Reason      string `json:"reason"`
	FreeableMiB uint64 `json:"freeable_mib,omitempty"`
}

var xenInfoHelp = cmdHelp{
	name:     "xen-info",
	synopsis: "[-o text|json]",
	text: `Shows the hypervisor version, the sysctl interface version, host memory, the
domains Xen knows (including those libvirt never saw), and whether tmem is
usable here, with the reason when it is not. It always talks to Xen directly
(root in dom0), never to xen-tmemd.
`,
	examples: `tmemctl xen-info
tmemctl xen-info -o json | jq .tmem`,
}

func runXenInfo(ctx context.Context, e *env, args []string) error {
	fs := newFlags(xenInfoHelp.name)
	output := fs.String("o", "text", "output `format`: text or json")
	pos, err := e.parse(fs, xenInfoHelp, args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	if err := checkFormat(*output, "text", "json"); err != nil {
		return err
	}
	conn, err := hypercall.Open(&hypercall.Config{PrivcmdPath: e.global.privcmd})
	if err != nil {
		return xenctl.Diagnose(xenctl.HostPaths{}, err)
	}
	defer conn.Close()
	info, err := collectXenInfo(conn)
	if err != nil {
		return xenctl.Diagnose(xenctl.HostPaths{}, err)
	}
	if *output == "json" {
		return writeJSON(e.stdout, info)
	}
	return writeXenInfoText(e.stdout, info)
}

// collectXenInfo fetches everything xen-info shows.
func collectXenInfo(c hypercall.Caller) (*xenInfo, error) {
	cl, err := xenctl.New(c, nil)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var info xenInfo
	v := cl.Version()
	info.Hypervisor.Version, info.Hypervisor.Major, info.Hypervisor.Minor, info.Hypervisor.Extra = v.String(), v.Major, v.Minor, v.Extra
	if info.Hypervisor.Capabilities, err = cl.Capabilities(); err != nil {
		return nil, err
	}
	if info.Hypervisor.Commandline, err = cl.Commandline(); err != nil {
		return nil, err
	}
	info.SysctlInterfaceVersion = cl.SysctlInterfaceVersion()
	pi, err := cl.Physinfo()
	if err != nil {
		return nil, err
	}
	m := &info.Memory
	m.TotalPages, m.FreePages, m.ScrubPages, m.OutstandingPages = pi.TotalPages, pi.FreePages, pi.ScrubPages, pi.OutstandingPages
	m.TotalKiB, m.FreeKiB = pi.TotalKiB(), pi.FreeKiB()
	info.CPUs.NrCPUs, info.CPUs.NrNodes, info.CPUs.CPUKHz = pi.NrCPUs, pi.NrNodes, pi.CPUKHz
	doms, err := cl.Domains()
	if err != nil {
		return nil, err
	}
	info.Domains = make([]xenInfoDomain, 0, len(doms))
	for _, d := range doms {
		info.Domains = append(info.Domains, xenInfoDomain{
			ID: d.ID, UUID: d.UUID(), TotPages: d.TotPages, MaxPages: d.MaxPages,
			MemoryKiB: d.MemoryKiB(), MaxMemoryKiB: d.MaxMemoryKiB(), VCPUs: d.OnlineVCPUs,
			State: append([]string{}, d.State()...),
		})
	}
	st, err := cl.ProbeTmem()
	if err != nil {
		return nil, err
	}
	info.Tmem = xenInfoTmem{Available: st.Available, Reason: st.Reason, FreeableMiB: st.FreeableMiB}
	if st.Generation != xenctl.GenNone {
		info.Tmem.Generation, info.Tmem.Releases = st.Generation.String(), st.Generation.Releases()
	}
	if st.Errno != 0 {
		info.Tmem.Errno = st.Errno.Name()
	}
	return &info, nil
}

func writeXenInfoText(w io.Writer, info *xenInfo) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	h := info.Hypervisor
	fmt.Fprintf(tw, "hypervisor:\tXen %s\n", h.Version)
	fmt.Fprintf(tw, "capabilities:\t%s\n", strings.TrimSpace(h.Capabilities))
	fmt.Fprintf(tw, "command line:\t%s\n", h.Commandline)
	fmt.Fprintf(tw, "sysctl interface:\t%#x\n", info.SysctlInterfaceVersion)
	m := info.Memory
	fmt.Fprintf(tw, "memory:\ttotal %d MiB (%d pages), free %d MiB (%d pages), outstanding claims %d pages\n",
		m.TotalKiB/1024, m.TotalPages, m.FreeKiB/1024, m.FreePages, m.OutstandingPages)
	fmt.Fprintf(tw, "cpus:\t%d on %d node(s), %d MHz\n", info.CPUs.NrCPUs, info.CPUs.NrNodes, info.CPUs.CPUKHz/1000)
	t := info.Tmem
	if t.Available {
		fmt.Fprintf(tw, "tmem:\tavailable — %s\n", t.Reason)
	} else {
		fmt.Fprintf(tw, "tmem:\tnot available — %s\n", t.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ndomains:\n")
	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "ID\tMEM(MiB)\tMAX(MiB)\tVCPUS\t STATE\t\n")
	for _, d := range info.Domains {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t %s\t\n", d.ID, d.MemoryKiB/1024, d.MaxMemoryKiB/1024, d.VCPUs, strings.Join(d.State, ","))
	}
	return tw.Flush()
}
