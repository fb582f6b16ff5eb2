package xensim

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/xenctl"
)

// The golden replay tests run the operation sequence of each real-Xen
// transcript in testdata/golden (verbatim copies of
// /work/shared/reference/xen-golden) against a simulator configured like
// that machine, and require the same return codes, the same raw bytes and
// byte-identical LIST text. The expected values are read from the
// transcript lines themselves, in order.

// transcript is one parsed transcript.
type transcript struct {
	t     testing.TB
	name  string
	lines []string // the "XT ..." lines without the prefix
	pos   int
}

func loadTranscript(t testing.TB, name string) *transcript {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "golden", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g := &transcript{t: t, name: name}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(strings.TrimRight(sc.Text(), "\r"), "XT "); ok {
			g.lines = append(g.lines, line)
		}
	}
	return g
}

// next returns the next line (from the cursor on) that starts with prefix
// and moves the cursor past it.
func (g *transcript) next(prefix string) string {
	g.t.Helper()
	for i := g.pos; i < len(g.lines); i++ {
		if strings.HasPrefix(g.lines[i], prefix) {
			g.pos = i + 1
			return g.lines[i]
		}
	}
	g.t.Fatalf("%s: no line %q after line %d", g.name, prefix, g.pos)
	return ""
}

// find returns the first line anywhere that starts with prefix, without
// moving the cursor.
func (g *transcript) find(prefix string) string {
	g.t.Helper()
	for _, l := range g.lines {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	g.t.Fatalf("%s: no line %q", g.name, prefix)
	return ""
}

// field returns the value of key=value in line (up to the next space), or
// the Go-quoted string for key="...".
func field(t testing.TB, line, key string) string {
	t.Helper()
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		if strings.HasPrefix(line, key+"=") {
			i = -1
		} else {
			t.Fatalf("no %s= in %q", key, line)
		}
	}
	v := line[i+len(key)+2:]
	if strings.HasPrefix(v, `"`) {
		q, err := strconv.QuotedPrefix(v)
		if err != nil {
			t.Fatalf("%s in %q: %v", key, line, err)
		}
		s, _ := strconv.Unquote(q)
		return s
	}
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	return v
}

func parseNum(t testing.TB, s string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		u, err2 := strconv.ParseUint(s, 0, 64)
		if err2 != nil {
			t.Fatalf("number %q: %v", s, err)
		}
		return int64(u)
	}
	return v
}

// rc returns the rc= of the next line starting with prefix.
func (g *transcript) rc(prefix string) int64 {
	g.t.Helper()
	return parseNum(g.t, field(g.t, g.next(prefix), "rc"))
}

// expect checks got against the rc of the next line starting with prefix.
func (g *transcript) expect(prefix string, got int64) {
	g.t.Helper()
	if want := g.rc(prefix); got != want {
		g.t.Errorf("%s: %s: got rc %d, real Xen %d", g.name, prefix, got, want)
	}
}

var listHeader = regexp.MustCompile(`^TMEM LIST \[([^]]*)\] cli_id=(0x[0-9a-f]+) long=(true|false) len=(\d+) rc=(-?\d+)`)

// expectList replays the next LIST of the transcript with the same
// arguments and checks the result and the text.
func (g *transcript) expectList(r *raw, label string) {
	g.t.Helper()
	h := g.next("TMEM LIST [" + label + "]")
	m := listHeader.FindStringSubmatch(h)
	if m == nil {
		g.t.Fatalf("bad LIST line %q", h)
	}
	cli := uint32(parseNum(g.t, m[2]))
	length := uint32(parseNum(g.t, m[4]))
	want := field(g.t, g.next("TMEM LIST TEXT END ["+label+"]"), "quoted")
	got, res := r.list(cli, m[3] == "true", length)
	if res != parseNum(g.t, m[5]) {
		g.t.Errorf("%s: LIST [%s]: rc %d, real Xen %s", g.name, label, res, m[5])
	}
	if got != want {
		g.t.Errorf("%s: LIST [%s] differs from real Xen (-real +sim):\n%s", g.name, label, cmp.Diff(want, got))
	}
	if tl := int(parseNum(g.t, field(g.t, h, "textlen"))); len(got) != tl {
		g.t.Errorf("%s: LIST [%s]: textlen %d, real Xen %d", g.name, label, len(got), tl)
	}
}

// goldenSim boots a simulator configured like the transcript's machine:
// version, command line (dom0_mem), total and free pages and cpu_khz of its
// first physinfo, and the hardware capability words of its raw reply.
func goldenSim(t testing.TB, g *transcript) (*Sim, *raw) {
	t.Helper()
	verLine := g.find("xen_version(XENVER_version)")
	extra := field(t, g.find("xen_version(XENVER_extraversion)"), "extraversion")
	f := strings.Fields(verLine)
	ver := f[len(f)-1] + extra
	cmdline := field(t, g.find("xen_version(XENVER_commandline)"), "cmdline")
	rawHex := strings.TrimSpace(strings.SplitN(g.find("  raw xen_sysctl (136 bytes):"), ":", 2)[1])
	rawb, err := hex.DecodeString(rawHex)
	if err != nil {
		t.Fatal(err)
	}
	v, err := xenctl.ParseVersion(ver)
	if err != nil {
		t.Fatal(err)
	}
	pi, err := xenctl.DecodePhysinfo(v, rawb[8:])
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Version: ver, Commandline: cmdline, TotalPages: pi.TotalPages, FreePages: pi.FreePages,
		CPUKHz: pi.CPUKHz, NrCPUs: pi.NrCPUs, MaxMFN: pi.MaxMFN, HWCap: pi.HWCap, PhysCapabilities: pi.Capabilities}
	if !strings.Contains(cmdline, "tmem=1") {
		cfg.Tmem = TmemDisabled
	}
	if m := regexp.MustCompile(`dom0_mem=(\d+)M,max:(\d+)M`).FindStringSubmatch(cmdline); m != nil {
		cfg.Dom0MemoryKiB = uint64(parseNum(t, m[1])) << 10
		cfg.Dom0MaxMemoryKiB = uint64(parseNum(t, m[2])) << 10
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, newRaw(t, s, ver)
}

// replayBoot checks the version, interface-version and physinfo part every
// transcript starts with.
func replayBoot(t *testing.T, g *transcript, s *Sim, r *raw) {
	rel := s.rel
	g.expect("xen_version(XENVER_version)", rc(s.Hypercall(hypercall.OpXenVersion, hypercall.Args{hypercall.XENVER_version})))
	str := func(cmd uint64, size int) (string, int64) {
		b := r.big.Bytes()[:size]
		clear(b)
		res := rc(s.Hypercall(hypercall.OpXenVersion, hypercall.Args{cmd, r.big.Addr()}))
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
		}
		return string(b), res
	}
	for _, c := range []struct {
		prefix, key string
		cmd         uint64
		size        int
	}{
		{"xen_version(XENVER_extraversion)", "extraversion", hypercall.XENVER_extraversion, hypercall.XenExtraversionLen},
		{"xen_version(XENVER_changeset)", "changeset", hypercall.XENVER_changeset, hypercall.XenChangesetLen},
		{"xen_version(XENVER_capabilities)", "caps", hypercall.XENVER_capabilities, hypercall.XenCapabilitiesLen},
		{"xen_version(XENVER_commandline)", "cmdline", hypercall.XENVER_commandline, hypercall.XenCommandlineLen},
	} {
		line := g.next(c.prefix)
		got, res := str(c.cmd, c.size)
		if want := field(t, line, c.key); got != want || res != parseNum(t, field(t, line, "rc")) {
			t.Errorf("%s: got %q rc %d, real Xen %q (%s)", c.prefix, got, res, want, line)
		}
	}
	var accepted []string
	for iv := uint32(0x0a); iv <= 0x20; iv++ {
		if r.sysctl(hypercall.XEN_SYSCTL_physinfo, iv, nil) == 0 {
			accepted = append(accepted, "0x"+strconv.FormatUint(uint64(iv), 16))
		}
	}
	if line := g.next("sysctl interface_version probe"); !strings.Contains(line, "accepted=["+strings.Join(accepted, " ")+"]") {
		t.Errorf("interface versions accepted: %v; real Xen: %s", accepted, line)
	}
	g.expect("sysctl(physinfo) with wrong interface_version", r.sysctl(hypercall.XEN_SYSCTL_physinfo, rel.iface-1, nil))
	line := g.next("  raw xen_sysctl (136 bytes):")
	want, _ := hex.DecodeString(strings.TrimSpace(strings.SplitN(line, ":", 2)[1]))
	if res := r.sysctl(hypercall.XEN_SYSCTL_physinfo, rel.iface, nil); res != 0 {
		t.Fatalf("physinfo: %d", res)
	}
	if got := r.sysctlBytes(); !bytes.Equal(got, want) {
		t.Errorf("physinfo reply differs from real Xen:\n sim  %x\n real %x", got, want)
	}
	// An address outside any hypercall buffer faults, like untouched,
	// unlocked memory on the real machine.
	var plain [4096]byte
	bad := uint64(hypercall.NewBuffer(plain[:], nil).Addr())
	g.expect("sysctl(physinfo) with arg in mmap-anon-untouched", rc(s.Hypercall(hypercall.OpSysctl, hypercall.Args{bad})))
	g.expect("xen_version(extraversion) into mmap-anon-untouched", rc(s.Hypercall(hypercall.OpXenVersion, hypercall.Args{hypercall.XENVER_extraversion, bad})))
}

func TestGoldenXen417(t *testing.T) {
	g := loadTranscript(t, "xen-4.17.7-debian-stage1.txt")
	s, r := goldenSim(t, g)
	replayBoot(t, g, s, r)
	g.expect("tmem_op(TMEM_NEW_POOL, flags=0x01000000", r.newPool(0x01000000, 0, 0))
	g.expect("tmem_op(TMEM_NEW_POOL, flags=0x01000001", r.newPool(0x01000001, 0, 0))
	g.expect("sysctl(XEN_SYSCTL_tmem_op=24, LIST)", r.sysctl(hypercall.XEN_SYSCTL_tmem_op, r.iface, func(u []byte) {
		le32(u, 0, hypercall.TMEMC_LIST)
		le32(u, 8, allClients)
	}))
}

func TestGoldenFreeableFlush(t *testing.T) {
	g := loadTranscript(t, "xen-4.12.4-tmem-freeable-flush.txt")
	s, r := goldenSim(t, g)
	replayBoot(t, g, s, r)
	mem := s.GuestMemory(0)
	page := bytes.Repeat([]byte("tmem freeable/flush test page "), 200)[:pageSize]

	state := func(label string) {
		t.Helper()
		if got, want := r.freePages(), uint64(parseNum(t, field(t, g.next("["+label+"] physinfo"), "free_pages"))); got != want {
			t.Errorf("[%s] free_pages %d, real Xen %d (delta off by %d)", label, got, want, int64(got)-int64(want))
		}
		if l := "[" + label + "] QUERY_FREEABLE_MB"; strings.HasPrefix(g.lines[g.pos], l) {
			g.expect(l, r.freeable())
		}
	}
	state("start")
	eph, pers := r.newPool(0x01000000, 0, 0), r.newPool(0x01000001, 0, 0)
	if line := g.next("pools"); line != "pools eph="+strconv.Itoa(int(eph))+" pers="+strconv.Itoa(int(pers)) {
		t.Errorf("pools eph=%d pers=%d; real Xen: %s", eph, pers, line)
	}
	// 1536 ephemeral pages in three objects of 512 (Oc:3, Nc:27), then
	// 256 persistent pages in one object (Nc:5).
	for i := 0; i < 1536; i++ {
		mem.Write(uint64(i), page)
		if v := r.put(int32(eph), [3]uint64{uint64(i / 512), 0, 0}, uint32(i%512), uint64(i)); v != 1 {
			t.Fatalf("eph put %d: %d", i, v)
		}
	}
	g.next("PUT 1536 pages into ephemeral pool: 1536 returned 1")
	state("after 1536 eph puts")
	for i := 0; i < 256; i++ {
		if v := r.put(int32(pers), [3]uint64{1 << 20, 0, 0}, uint32(i), uint64(i)); v != 1 {
			t.Fatalf("pers put %d: %d", i, v)
		}
	}
	g.next("PUT 256 pages into persistent pool: 256 returned 1")
	state("after 256 pers puts")
	g.expectList(r, "filled")
	g.expect("TMEM FLUSH cli_id=ALL arg=1024kb", r.flush(allClients, 1024))
	state("after flush 1024kb")
	g.expect("TMEM FLUSH cli_id=ALL arg=4096kb", r.flush(allClients, 4096))
	state("after flush 4096kb")
	g.expectList(r, "after flushes")
	g.expect("DESTROY_POOL eph", r.destroyPool(int32(eph)))
	g.expect("DESTROY_POOL pers", r.destroyPool(int32(pers)))
	state("after destroy")
	g.expectList(r, "end")
}
