package xentest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Host-side checks of TestIntegrationXen417. They return problems rather
// than calling t.Errorf so that TestChecks can show they catch wrong values.

// xenInfo is the JSON printed by "tmemctl xen-info -o json".
type xenInfo struct {
	Hypervisor struct {
		Version      string `json:"version"`
		Major        int    `json:"major"`
		Minor        int    `json:"minor"`
		Extra        string `json:"extra"`
		Capabilities string `json:"capabilities"`
		CommandLine  string `json:"commandline"`
	} `json:"hypervisor"`
	SysctlInterfaceVersion uint32 `json:"sysctl_interface_version"`
	Memory                 struct {
		TotalPages       int64 `json:"total_pages"`
		FreePages        int64 `json:"free_pages"`
		ScrubPages       int64 `json:"scrub_pages"`
		OutstandingPages int64 `json:"outstanding_pages"`
		TotalKiB         int64 `json:"total_kib"`
		FreeKiB          int64 `json:"free_kib"`
	} `json:"memory"`
	CPUs struct {
		NrCPUs  int   `json:"nr_cpus"`
		NrNodes int   `json:"nr_nodes"`
		CPUKHz  int64 `json:"cpu_khz"`
	} `json:"cpus"`
	Domains []domainInfo `json:"domains"`
	Tmem    struct {
		Available  bool   `json:"available"`
		Generation string `json:"generation"`
		Errno      string `json:"errno"`
		Reason     string `json:"reason"`
	} `json:"tmem"`
}

type domainInfo struct {
	ID           uint32   `json:"id"`
	TotPages     int64    `json:"tot_pages"`
	MaxPages     int64    `json:"max_pages"`
	MemoryKiB    int64    `json:"memory_kib"`
	MaxMemoryKiB int64    `json:"max_memory_kib"`
	VCPUs        int      `json:"vcpus"`
	State        []string `json:"state"`
}

type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// checkConsole checks that Xen printed what the other checks compare with.
func checkConsole(log string, xen XenConsole) (p problems) {
	if !strings.HasPrefix(xen.Version, "4.17.") {
		p.add("Xen console version = %q, want 4.17.x", xen.Version)
	}
	if xen.SystemRAMKB == 0 || xen.CPUKHz == 0 || xen.CommandLine == "" {
		p.add("Xen console lacks System RAM (%d kB), cpu MHz (%d kHz) or command line (%q)",
			xen.SystemRAMKB, xen.CPUKHz, xen.CommandLine)
	}
	if len(xen.Heaps) != 2 || len(xen.Dom0) != 2 {
		p.add("debug keys 'm'/'q' printed %d heap and %d dom0 blocks, want 2 each", len(xen.Heaps), len(xen.Dom0))
	}
	if strings.Contains(log, "@@XENTEST-INSMOD-FAILED") {
		p.add("insmod xen-privcmd.ko failed")
	}
	return p
}

// checkXenInfo checks tmemctl's JSON against Xen's console and sysfs. It
// returns the JSON text for the test log.
func checkXenInfo(log string) (out string, p problems) {
	xen := ParseXenConsole(log)
	body, end, ok := Section(log, "@@XENINFO-BEGIN@@", "@@XENINFO-END")
	if !ok {
		p.add("no @@XENINFO-BEGIN@@/END section in the serial log")
		return "", p
	}
	out = strings.Join(body, "\n")
	if code, ok := SentinelInt(end, "exit"); !ok || code != 0 {
		p.add("tmemctl xen-info -o json: %s, want exit=0", end)
	}
	var info xenInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		p.add("output is not the xen-info JSON: %v", err)
		return out, p
	}
	h := info.Hypervisor
	if h.Major != 4 || h.Minor != 17 {
		p.add("major.minor = %d.%d, want 4.17", h.Major, h.Minor)
	}
	if want := fmt.Sprintf("%d.%d%s", h.Major, h.Minor, h.Extra); h.Version != want || h.Version != xen.Version {
		p.add("version = %q, extra %q; want %q, as Xen printed at boot", h.Version, h.Extra, xen.Version)
	}
	if sysfs := sysfsVersion(log); h.Version != sysfs {
		p.add("version = %q, /sys/hypervisor/version says %q", h.Version, sysfs)
	}
	if !strings.Contains(h.Capabilities, "xen-3.0-x86_64") {
		p.add("capabilities = %q, want xen-3.0-x86_64 among them", h.Capabilities)
	}
	if got := strings.TrimSpace(h.CommandLine); got != xen.CommandLine {
		p.add("commandline = %q, Xen printed %q", got, xen.CommandLine)
	}
	if info.SysctlInterfaceVersion != 0x15 {
		p.add("sysctl_interface_version = %#x, want 0x15 (Xen 4.17)", info.SysctlInterfaceVersion)
	}
	if c := info.CPUs; c.NrCPUs != 1 || c.NrNodes != 1 || c.CPUKHz != xen.CPUKHz {
		p.add("cpus = %+v, want 1 cpu (QEMU -smp 1), 1 node, %d kHz as Xen printed", c, xen.CPUKHz)
	}
	begin := slices.Index(Lines(log), "@@XENINFO-BEGIN@@")
	p = append(p, checkMemory(&info, xen, begin)...)
	p = append(p, checkDomains(&info, xen, begin)...)
	if tm := info.Tmem; tm.Available || tm.Errno != "ENOSYS" || tm.Reason == "" || tm.Generation != "" {
		p.add("tmem = %+v, want unavailable with errno ENOSYS, a reason and no generation", tm)
	}
	return out, p
}

func sysfsVersion(log string) string {
	for _, l := range Lines(log) {
		if v, ok := strings.CutPrefix(l, "@@SYSFS-VERSION "); ok {
			return strings.TrimSuffix(v, "@@")
		}
	}
	return ""
}

// around returns the marks printed last before line i and first after it.
func around[T any](marks []T, line func(T) int, i int) (before, after T, ok bool) {
	for k, m := range marks {
		if line(m) > i {
			return marks[max(k-1, 0)], m, k > 0
		}
	}
	return before, after, false
}

// checkMemory compares physinfo with Xen's console. total_pages is the
// "System RAM" Xen printed at boot (the same nr_pages). free_pages must lie
// between the free heap that debug key 'm' printed right before and right
// after tmemctl ran; on an idle dom0 both are equal, so it is exact.
func checkMemory(info *xenInfo, xen XenConsole, begin int) (p problems) {
	mem := info.Memory
	if want := xen.SystemRAMKB / 4; mem.TotalPages != want {
		p.add("total_pages = %d, Xen printed System RAM %d kB = %d pages", mem.TotalPages, xen.SystemRAMKB, want)
	}
	before, after, ok := around(xen.Heaps, func(m Mark) int { return m.Line }, begin)
	if !ok {
		p.add("no debug-key 'm' output around tmemctl")
	} else if lo, hi := min(before.KB, after.KB)/4, max(before.KB, after.KB)/4; mem.FreePages < lo || mem.FreePages > hi {
		p.add("free_pages = %d, Xen's heap had %d pages free before tmemctl and %d after",
			mem.FreePages, before.KB/4, after.KB/4)
	}
	if mem.TotalKiB != mem.TotalPages*4 || mem.FreeKiB != mem.FreePages*4 {
		p.add("total_kib/free_kib = %d/%d, want %d/%d", mem.TotalKiB, mem.FreeKiB, mem.TotalPages*4, mem.FreePages*4)
	}
	if mem.ScrubPages != 0 || mem.OutstandingPages != 0 {
		p.add("scrub/outstanding pages = %d/%d, want 0/0 (no claims; 4.17 always reports 0 scrub pages)",
			mem.ScrubPages, mem.OutstandingPages)
	}
	return p
}

// checkDomains compares dom0 with what debug key 'q' printed around tmemctl.
func checkDomains(info *xenInfo, xen XenConsole, begin int) (p problems) {
	i := slices.IndexFunc(info.Domains, func(d domainInfo) bool { return d.ID == 0 })
	if i < 0 {
		p.add("domains = %+v, want dom0 among them", info.Domains)
		return p
	}
	if len(info.Domains) != 1 {
		p.add("domains = %+v, want only dom0", info.Domains)
	}
	d := info.Domains[i]
	before, after, ok := around(xen.Dom0, func(p Dom0Pages) int { return p.Line }, begin)
	if !ok {
		p.add("no debug-key 'q' output around tmemctl")
	} else if d.TotPages < min(before.NrPages, after.NrPages) || d.TotPages > max(before.NrPages, after.NrPages) ||
		d.MaxPages != before.MaxPages {
		p.add("dom0 tot_pages/max_pages = %d/%d, Xen printed nr_pages=%d..%d max_pages=%d",
			d.TotPages, d.MaxPages, before.NrPages, after.NrPages, before.MaxPages)
	}
	if d.MemoryKiB != d.TotPages*4 || d.MaxMemoryKiB != d.MaxPages*4 {
		p.add("dom0 memory_kib/max_memory_kib = %d/%d, want %d/%d", d.MemoryKiB, d.MaxMemoryKiB, d.TotPages*4, d.MaxPages*4)
	}
	if d.VCPUs != 1 || !slices.Contains(d.State, "running") {
		p.add("dom0 vcpus = %d, state = %q; want 1 vcpu, running (it is running tmemctl)", d.VCPUs, d.State)
	}
	return p
}

// checkGuestTest checks a compiled test's run in dom0 and returns the tests
// it skipped.
func checkGuestTest(log, pkg string) (skips []string, p problems) {
	body, end, ok := Section(log, "@@TEST-BEGIN "+pkg+"@@", "@@TEST "+pkg+" ")
	out := strings.Join(body, "\n")
	if !ok {
		p.add("%s.test did not finish in dom0; its output:\n%s", pkg, out)
		return nil, p
	}
	for _, l := range body {
		if s, ok := strings.CutPrefix(strings.TrimSpace(l), "--- SKIP: "); ok {
			skips = append(skips, s)
		}
	}
	if code, ok := SentinelInt(end, "exit"); !ok || code != 0 || !slices.Contains(body, "PASS") {
		p.add("%s.test -test.v in dom0 (XENTMEM_IN_DOM0=1): %s, want exit=0 and PASS; output:\n%s", pkg, end, out)
	}
	return skips, p
}

// TestChecks runs the checks on a recorded real log, then on copies with one
// value changed, each of which must be caught.
func TestChecks(t *testing.T) {
	log := readLog(t)
	if p := checkConsole(log, ParseXenConsole(log)); len(p) != 0 {
		t.Errorf("checkConsole on the recorded log: %q", p)
	}
	if _, p := checkXenInfo(log); len(p) != 0 {
		t.Errorf("checkXenInfo on the recorded log: %q", p)
	}
	tests := []struct{ name, old, new, want string }{
		{"free pages", `"free_pages": 387194,`, `"free_pages": 387195,`, "free_pages = 387195"},
		{"free kib", `"free_kib": 1548776`, `"free_kib": 1548772`, "free_kib"},
		{"total pages", `"total_pages": 524159,`, `"total_pages": 524160,`, "total_pages = 524160"},
		{"system ram", "System RAM: 2047MB (2096636kB)", "System RAM: 2047MB (2096640kB)", "total_pages = 524159"},
		{"interface", `"sysctl_interface_version": 21,`, `"sysctl_interface_version": 20,`, "0x14"},
		{"version", `"minor": 17,`, `"minor": 16,`, "major.minor = 4.16"},
		{"cpu khz", `"cpu_khz": 1999999`, `"cpu_khz": 2000000`, "cpus ="},
		{"dom0 pages", `"tot_pages": 131072,`, `"tot_pages": 131071,`, "dom0 tot_pages"},
		{"tmem errno", `"errno": "ENOSYS",`, `"errno": "ENODEV",`, "tmem ="},
		{"exit code", "@@XENINFO-END exit=0@@", "@@XENINFO-END exit=1@@", "exit=1"},
		{"no end", "@@XENINFO-END exit=0@@", "", "no @@XENINFO-BEGIN@@/END"},
		{"bad json", `"hypervisor": {`, `"hypervisor": {{`, "not the xen-info JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(log, tt.old) {
				t.Fatalf("recorded log lacks %q", tt.old)
			}
			_, p := checkXenInfo(strings.Replace(log, tt.old, tt.new, 1))
			if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, tt.want) }) {
				t.Errorf("problems = %q, want one mentioning %q", p, tt.want)
			}
		})
	}
	guest := "@@TEST-BEGIN a@@\r\n=== RUN   TestX\r\n--- SKIP: TestX (0.00s)\r\nPASS\r\n@@TEST a exit=0@@\r\n" +
		"@@TEST-BEGIN b@@\r\n--- FAIL: TestY (0.00s)\r\nFAIL\r\n@@TEST b exit=1@@\r\n" +
		"@@TEST-BEGIN c@@\r\nPASS\r\n"
	for _, tt := range []struct {
		pkg, skips, problem string
	}{
		{"a", "TestX (0.00s)", ""},
		{"b", "", "exit=1"},
		{"c", "", "did not finish"},
		{"d", "", "did not finish"},
	} {
		skips, p := checkGuestTest(guest, tt.pkg)
		if strings.Join(skips, ",") != tt.skips || (tt.problem == "") != (len(p) == 0) ||
			(len(p) > 0 && !strings.Contains(p[0], tt.problem)) {
			t.Errorf("checkGuestTest(%s) = %q, %q; want skips %q and a problem mentioning %q", tt.pkg, skips, p, tt.skips, tt.problem)
		}
	}
}
