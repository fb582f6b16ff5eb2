package xensim

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/xentmem/xentmem/hypercall"
)

// guests creates n domains and returns raw callers for them.
func guests(t *testing.T, s *Sim, n int) []*raw {
	t.Helper()
	var out []*raw
	for i := 0; i < n; i++ {
		id, err := s.CreateDomain(DomainConfig{MemoryKiB: 32 << 10})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, newRaw(t, s.Guest(id), s.Version()))
	}
	return out
}

// TestListGarbledShared reproduces the constructed Xen 4.5 example of
// xenctl's LIST fixtures (constructed-xen-4.5-garbled-shared-short.txt): with two global shared pools the second S= line
// repeats the start of the first (tmemc_list_shared does not reset its
// scratch offset).
func TestListGarbledShared(t *testing.T) {
	s, err := New(&Config{Version: "4.5.5"})
	if err != nil {
		t.Fatal(err)
	}
	g := guests(t, s, 3)
	if p := g[0].newPool(ephShr, 1, 2); p != 0 {
		t.Fatal(p)
	}
	for _, r := range g[1:] {
		if p := r.newPool(ephShr, 0x8899aabbccddeeff, 0x0011223344556677); p != 0 {
			t.Fatal(p)
		}
	}
	r := newRaw(t, s, "4.5.5")
	text, res := r.list(allClients, false, 16384)
	if res != 0 {
		t.Fatal(res)
	}
	want := `S=SI:0,PT:ES,U0:1,U1:2,SC:1
S=SI:0,PT:ES,U0:1,U1:2,SC:1
S=SI:1,PT:ES,U0:8899aa,SC:2,SC:3
C=CI:1,ww:0,ca:0,co:0,fr:0,Tc:0,Ge:0,Pp:0,Gp:0
P=CI:1,PI:0,PT:ES,U0:1,U1:2
C=CI:2,ww:0,ca:0,co:0,fr:0,Tc:0,Ge:0,Pp:0,Gp:0
P=CI:2,PI:0,PT:ES,U0:8899aabbccddeeff,U1:11223344556677
C=CI:3,ww:0,ca:0,co:0,fr:0,Tc:0,Ge:0,Pp:0,Gp:0
P=CI:3,PI:0,PT:ES,U0:8899aabbccddeeff,U1:11223344556677
T
`
	got := text[strings.IndexByte(text, '\n')+1:]
	if got != want {
		t.Errorf("LIST (-want +got):\n%s", cmp.Diff(want, got))
	}
}

// TestListGarbledLong checks the long form with three shared pools against
// an independent rendering of the rule: S= record k (k > 1) is the first
// len(header_k) bytes of record k-1 followed by record k after its header.
func TestListGarbledLong(t *testing.T) {
	s, err := New(&Config{Version: "4.1.6"})
	if err != nil {
		t.Fatal(err)
	}
	g := guests(t, s, 5)
	uuids := [][2]uint64{{0x8899aabbccddeeff, 0x11223344556677}, {1, 2}, {^uint64(0), ^uint64(1)}}
	for i, r := range g {
		u := uuids[[]int{0, 0, 1, 1, 2}[i]]
		r.newPool(ephShr, u[0], u[1])
		for j := uint32(0); j < uint32(10*(i+1)); j++ {
			r.put(0, [3]uint64{uint64(j % 3)}, j, uint64(j))
		}
	}
	text, _ := newRaw(t, s, "4.1.6").list(allClients, true, 1<<16)
	lines := strings.SplitAfter(text, "\n")
	var sLines, clean []string
	for _, l := range lines {
		if strings.HasPrefix(l, "S=") {
			sLines = append(sLines, l)
		}
	}
	// Clean records from the owners' P= lines (same statistics).
	for i, u := range uuids {
		var sharers []string
		var stats string
		for _, l := range lines {
			if strings.HasPrefix(l, "P=") && strings.Contains(l, "U0:"+hx(u[0])+",U1:"+hx(u[1])+",") {
				cli := strings.TrimPrefix(strings.SplitN(l, ",", 2)[0], "P=CI:")
				sharers = append(sharers, ",SC:"+cli)
				stats = l[strings.Index(l, ",Pc:"):]
			}
		}
		clean = append(clean, "S=SI:"+strconv.Itoa(i)+",PT:ES,U0:"+hx(u[0])+",U1:"+hx(u[1])+strings.Join(sharers, "")+stats)
	}
	want := []string{clean[0]}
	for k := 1; k < len(clean); k++ {
		h := len("S=SI:" + strconv.Itoa(k) + ",PT:ES,U0:" + hx(uuids[k][0]) + ",U1:" + hx(uuids[k][1]))
		want = append(want, want[k-1][:h]+clean[k][h:])
	}
	if !cmp.Equal(want, sLines) {
		t.Errorf("S= lines (-want +got):\n%s", cmp.Diff(want, sLines))
	}
	if !strings.Contains(text, "P=CI:2,PI:0,PT:ES") || !strings.HasPrefix(lines[len(lines)-2], "T=Gn:") {
		t.Errorf("unexpected LIST:\n%s", text)
	}
}

func hx(v uint64) string { return strconv.FormatUint(v, 16) }

// TestListSharedPoolOwnerID: a P= line of a shared pool shows the owner's
// slot, so one client can list two pools with the same PI (4.12, with the
// per-client authorisation 4.9+ require).
func TestListSharedPoolOwnerID(t *testing.T) {
	s, _ := New(nil)
	g := guests(t, s, 2)
	d := newRaw(t, s, "4.12.4")
	for _, cli := range []uint32{1, 2} {
		if res := d.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_SET_AUTH, cli, 32, 0, d.poolRecs([5]uint64{4, 0, 0, 0xab, 0xcd})); res != 1 {
			t.Fatalf("SET_AUTH %d: %d", cli, res)
		}
	}
	g[0].newPool(eph, 0, 0)
	if p := g[0].newPool(ephShr, 0xab, 0xcd); p != 1 {
		t.Fatal(p)
	}
	if p := g[1].newPool(ephShr, 0xab, 0xcd); p != 0 {
		t.Fatal(p)
	}
	// Not authorised for this uuid: silently private.
	if p := g[1].newPool(ephShr, 0xee, 0xff); p != 1 {
		t.Fatal(p)
	}
	text, _ := d.list(2, false, 4096)
	want := "C=CI:2,ww:0,co:0,fr:0,Tc:0,Ge:0,Pp:0,Gp:0\nP=CI:2,PI:1,PT:ES,U0:ab,U1:cd\nP=CI:2,PI:1,PT:EP,U0:0,U1:0\n"
	if text != want {
		t.Errorf("LIST:\n%s\nwant\n%s", text, want)
	}
	// uuid (-1,-1) always gives a private pool.
	if p := g[0].newPool(ephShr, ^uint64(0), ^uint64(0)); p != 2 {
		t.Fatal(p)
	}
	all, _ := d.list(allClients, false, 8192)
	if strings.Count(all, "S=") != 1 || !strings.Contains(all, "S=SI:0,PT:ES,U0:ab,U1:cd,SC:1,SC:2\n") {
		t.Errorf("shared pools:\n%s", all)
	}
}

// TestListPastLength: the C= line is copied unchecked and the remaining
// length wraps, so later records are written past len; 4.0–4.3 count a
// record even when its copy faults.
func TestListPastLength(t *testing.T) {
	for _, v := range []string{"4.3.4", "4.4.4", "4.12.4"} {
		t.Run(v, func(t *testing.T) {
			s, _ := New(&Config{Version: v})
			r := newRaw(t, s, v)
			r.newPool(eph, 0, 0)
			full, _ := r.list(allClients, false, 16384)
			short, res := r.list(allClients, false, 100)
			lines := strings.SplitAfter(full, "\n")
			got := strings.SplitAfter(short, "\n")
			if res != 0 || len(short) <= 100 || len(got) != 4 || got[1] != lines[1] || got[2] != lines[len(lines)-2] {
				t.Errorf("len=100: rc %d %q; full listing %q", res, short, full)
			}
			// Into the last 40 bytes of a buffer: LIST still answers 0.
			// 4.0–4.3 count the G= record whose copy faulted, so every
			// later record lands beyond the buffer; 4.4+ do not, so the
			// next records are tried at the same offset: the C= line
			// faults too, the short P= line and T fit.
			big := r.big.Bytes()
			clear(big)
			if res := r.tmemCtl(hypercall.TMEMC_LIST, allClients, 16384, 0, r.big.AddrAt(len(big)-40)); res != 0 {
				t.Errorf("rc %d", res)
			}
			tail := string(big[len(big)-40:])
			want := "P=CI:0,PI:0,PT:EP,U0:0,U1:0\nT\n\x00" + lines[1][31:40]
			if !s.rel.atLeast(4, 4) {
				// TMEM_CONTROL calls count in Tt: two LISTs since full.
				want = strings.Replace(lines[0][:40], "Tt:2,", "Tt:4,", 1)
			}
			if tail != want {
				t.Errorf("tail %q, want %q", tail, want)
			}
		})
	}
}

// TestListOldReleases: 4.0.0's short G= long form, the T= cycle counters
// of 4.0–4.3 and the per-client cycles, driven by the injected clock.
func TestListOldReleases(t *testing.T) {
	now := time.Unix(0, 0)
	clock := func() time.Time { now = now.Add(time.Microsecond); return now }
	s, _ := New(&Config{Version: "4.0.0", Clock: clock, CPUKHz: 2000000})
	r := newRaw(t, s, "4.0.0")
	r.newPool(ephA0, 0, 0)
	r.put(0, [3]uint64{7}, 0, 1)
	r.get(0, [3]uint64{7}, 0, 2)
	text, _ := r.list(allClients, true, 16384)
	lines := strings.Split(text, "\n")
	if !strings.HasSuffix(lines[0], ",Pc:0,Pm:1") {
		t.Errorf("4.0.0 G= long form: %s", lines[0])
	}
	if !strings.Contains(lines[1], ",Tc:") || strings.Contains(lines[1], ",Tc:0,") {
		t.Errorf("client cycles not counted: %s", lines[1])
	}
	if !regexp.MustCompile(`^T=Gn:1,Gt:\d+,Gx:\d+,Gm:\d+,Pn:1,.*,dn:0,dt:0,dx:0,dm:2147483647$`).MatchString(lines[3]) {
		t.Errorf("T= line: %s", lines[3])
	}
	s2, _ := New(&Config{Version: "4.0.1"})
	text2, _ := newRaw(t, s2, "4.0.1").list(allClients, true, 16384)
	if !strings.Contains(text2, ",Fc:0,Fm:0,Sc:0,Sm:0,Ep:0,Gd:0,Zt:0,Gz:0\n") {
		t.Errorf("4.0.1 G= long form: %s", text2)
	}
}
