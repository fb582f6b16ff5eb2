package main

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"
)

// sampleOf builds a sample from LIST text, for model tests.
func sampleOf(t *testing.T, at time.Time, text string) *sample {
	t.Helper()
	v, err := newView(&listResult{Text: text, Version: "4.12.4", Time: at,
		Domains: []listDomain{{ID: 0, Name: "Domain-0", TotPages: 1024}, {ID: 1, Name: "web1", TotPages: 2048}, {ID: 2, Name: "idle", TotPages: 512}},
		Names:   map[string]string{"1": "web1", "2": "idle"}})
	if err != nil {
		t.Fatal(err)
	}
	return &sample{view: v, status: statusResult{Mode: "sim", TotalKiB: 1 << 20, FreeKiB: 1 << 19}}
}

const (
	listT0 = "G=Tt:100,Te:0,Cf:0,Af:0,Pf:0,Ta:0,Lm:0,Et:10,Ea:10,Rt:0,Ra:0,Rx:0,Fp:0,Ec:50,Em:50,Oc:1,Om:1,Nc:1,Nm:1,Pc:50,Pm:50,Fc:50,Fm:50,Sc:0,Sm:0,Ep:60,Gd:0,Zt:0,Gz:0\n" +
		"C=CI:1,ww:5,co:1,fr:0,Tc:0,Ge:20,Pp:0,Gp:0,Ec:50,Em:50,cp:0,cb:0,cn:0,cm:0\n" +
		"P=CI:1,PI:0,PT:EP,U0:0,U1:0,Pc:50,Pm:50,Oc:1,Om:1,Nc:1,Nm:1,ps:90,pt:100,pd:0,pr:0,px:10,gs:30,gt:40,fs:0,ft:0,os:0,ot:0\n" +
		"T\n"
	// Two seconds later: 40 more puts (all good), 20 gets (10 hits), and
	// 20 evictions: 50 + 40 − 10 − 20 = 60 pages.
	listT1 = "G=Tt:200,Te:0,Cf:0,Af:0,Pf:0,Ta:0,Lm:0,Et:30,Ea:30,Rt:0,Ra:0,Rx:0,Fp:0,Ec:60,Em:60,Oc:1,Om:1,Nc:1,Nm:1,Pc:60,Pm:60,Fc:60,Fm:60,Sc:0,Sm:0,Ep:100,Gd:0,Zt:0,Gz:0\n" +
		"C=CI:1,ww:5,co:1,fr:1,Tc:0,Ge:30,Pp:0,Gp:0,Ec:60,Em:60,cp:0,cb:0,cn:0,cm:0\n" +
		"P=CI:1,PI:0,PT:EP,U0:0,U1:0,Pc:60,Pm:60,Oc:1,Om:1,Nc:1,Nm:1,ps:130,pt:140,pd:0,pr:0,px:10,gs:40,gt:60,fs:0,ft:0,os:0,ot:0\n" +
		"T\n"
	// The pool was destroyed and created again: counters restart.
	listT2 = "G=Tt:300,Te:0,Cf:0,Af:0,Pf:0,Ta:0,Lm:0,Et:30,Ea:30,Rt:0,Ra:0,Rx:0,Fp:0,Ec:5,Em:60,Oc:1,Om:1,Nc:1,Nm:1,Pc:5,Pm:60,Fc:5,Fm:60,Sc:0,Sm:0,Ep:105,Gd:0,Zt:0,Gz:0\n" +
		"C=CI:1,ww:5,co:1,fr:0,Tc:0,Ge:30,Pp:0,Gp:0,Ec:5,Em:60,cp:0,cb:0,cn:0,cm:0\n" +
		"P=CI:1,PI:0,PT:EP,U0:0,U1:0,Pc:5,Pm:5,Oc:1,Om:1,Nc:1,Nm:1,ps:5,pt:6,pd:0,pr:0,px:1,gs:0,gt:2,fs:0,ft:0,os:0,ot:0\n" +
		"T\n"
)

func TestBuildFrame(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s0 := sampleOf(t, t0, listT0)
	s1 := sampleOf(t, t0.Add(2*time.Second), listT1)
	s2 := sampleOf(t, t0.Add(3*time.Second), listT2)

	f := buildFrame(nil, s0, sortPages)
	if f.Interval != 0 || len(f.Rows) != 3 || f.Rows[0].Name != "web1" {
		t.Fatalf("first frame: %+v", f)
	}
	if r := f.Rows[0]; r.PutsPS != 0 || r.HitRatio == nil || *r.HitRatio != 0.75 {
		t.Errorf("first frame: rates %+v, want none and the lifetime hit ratio 30/40", r)
	}
	f = buildFrame(s0, s1, sortPages)
	r := f.Rows[0]
	if f.Interval != 2*time.Second || r.PutsPS != 20 || r.GetsPS != 10 || r.HitsPS != 5 || r.EvictPS != 10 || !r.Frozen {
		t.Errorf("second frame: %+v", r)
	}
	if *r.HitRatio != 0.5 || f.EvictPS != 10 || f.OpsPS != 50 {
		t.Errorf("second frame: hit ratio %v, host evictions %v/s, ops %v/s", *r.HitRatio, f.EvictPS, f.OpsPS)
	}
	f = buildFrame(s1, s2, sortPages)
	r = f.Rows[0]
	if r.PutsPS != 6 || r.GetsPS != 2 || r.HitsPS != 0 || r.EvictPS != 0 {
		t.Errorf("after a reset the new pool counts from 0: %+v", r)
	}
	for _, row := range f.Rows {
		for _, x := range []float64{row.PutsPS, row.GetsPS, row.HitsPS, row.EvictPS} {
			if x < 0 || math.IsNaN(x) || math.IsInf(x, 0) {
				t.Errorf("bad rate in %+v", row)
			}
		}
	}
	// Same time twice: no interval, no rates.
	if f := buildFrame(s1, s1, sortPages); f.Interval != 0 || f.Rows[0].PutsPS != 0 {
		t.Errorf("zero interval: %+v", f.Rows[0])
	}
}

func TestSortRows(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s0, s1 := sampleOf(t, t0, listT0), sampleOf(t, t0.Add(time.Second), listT1)
	want := map[sortKey][]string{
		sortPages: {"web1", "Domain-0", "idle"}, // domains without tmem last
		sortHits:  {"web1", "Domain-0", "idle"},
		sortPuts:  {"web1", "Domain-0", "idle"},
		sortName:  {"Domain-0", "idle", "web1"},
	}
	k := sortPages
	for range sortKeys {
		var got []string
		for _, r := range buildFrame(s0, s1, k).Rows {
			got = append(got, r.Name)
		}
		if strings.Join(got, ",") != strings.Join(want[k], ",") {
			t.Errorf("sort %s: %v, want %v", k, got, want[k])
		}
		k = k.next()
	}
	if k != sortPages {
		t.Errorf("'s' does not cycle back to pages: %s", k)
	}
}

// TestEvictionsMatchXen checks the per-domain eviction estimate against
// the host-wide count Xen keeps (G= Et), on the simulator: equal when no
// guest flushed whole objects, an upper bound otherwise.
func TestEvictionsMatchXen(t *testing.T) {
	for _, v := range goldenVersions[:4] {
		t.Run(v, func(t *testing.T) {
			s := newScenario(t, v)
			be, err := s.backend(t, modeDirect)
			if err != nil {
				t.Fatal(err)
			}
			defer be.Close()
			prev, err := fetchSample(context.Background(), be)
			if err != nil {
				t.Fatal(err)
			}
			exact := 0
			for range 6 {
				s.work(t, 3000)
				s.clock.advance(time.Second)
				cur, err := fetchSample(context.Background(), be)
				if err != nil {
					t.Fatal(err)
				}
				f := buildFrame(prev, cur, sortPages)
				var sum float64
				upper := false
				for _, r := range f.Rows {
					sum += r.EvictPS
					upper = upper || r.EvictUpper
				}
				switch {
				case !upper && sum != f.EvictPS:
					t.Errorf("Σ per-domain evictions %v/s, Xen's Et %v/s", sum, f.EvictPS)
				case upper && sum < f.EvictPS:
					t.Errorf("upper bound %v/s below Xen's %v/s", sum, f.EvictPS)
				case !upper:
					exact++
				}
				if f.EvictPS == 0 {
					t.Errorf("no evictions: the scenario should be under memory pressure")
				}
				prev = cur
			}
			if exact == 0 {
				t.Error("every interval had object flushes: the exact case went untested")
			}
		})
	}
}

func TestTopKeys(t *testing.T) {
	ui := &topUI{delay: time.Second}
	steps := []struct {
		key          byte
		quit, retime bool
		check        func() bool
	}{
		{'s', false, false, func() bool { return ui.sort == sortHits }},
		{'s', false, false, func() bool { return ui.sort == sortPuts }},
		{'d', false, false, func() bool { return ui.prompt }},
		{'0', false, false, nil},
		{'.', false, false, nil},
		{'x', false, false, func() bool { return ui.input == "0." }},
		{'5', false, false, nil},
		{keyEnter, false, true, func() bool { return !ui.prompt && ui.delay == 500*time.Millisecond }},
		{'d', false, false, nil},
		{'0', false, false, nil},
		{keyEnter, false, false, func() bool { return ui.delay == 500*time.Millisecond && strings.Contains(ui.msg, "want seconds") }},
		{'d', false, false, nil},
		{'7', false, false, nil},
		{keyDelete, false, false, func() bool { return ui.input == "" }},
		{keyEsc, false, false, func() bool { return !ui.prompt }},
		{'q', true, false, nil},
		{keyCtrlC, true, false, nil},
	}
	for i, st := range steps {
		quit, retime := ui.key(st.key)
		if quit != st.quit || retime != st.retime || st.check != nil && !st.check() {
			t.Fatalf("step %d (%q): quit %v retime %v, state %+v", i, st.key, quit, retime, ui)
		}
	}
}

func TestTopScreenLines(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ui := &topUI{prev: sampleOf(t, t0, listT0), cur: sampleOf(t, t0.Add(time.Second), listT1), delay: time.Second}
	for _, h := range []int{24, 6, 3} {
		lines := ui.lines(100, h)
		if len(lines) != max(h, 5) && h >= 5 || len(lines) > max(h, 5) {
			t.Errorf("height %d: %d lines", h, len(lines))
		}
		if !strings.Contains(lines[len(lines)-1], "q quit") {
			t.Errorf("height %d: no key help at the bottom: %q", h, lines[len(lines)-1])
		}
	}
	lines := ui.lines(100, 24)
	if !strings.HasPrefix(lines[0], "tmem-top  03:04:06  Xen 4.12.4 (tmem ABI D, simulated)") ||
		!strings.Contains(lines[3], ansiReverse+"DOMAIN") || !strings.Contains(lines[3], "TMEM_MiB*") || !strings.HasPrefix(lines[4], "web1") {
		t.Errorf("screen:\n%s", strings.Join(lines, "\n"))
	}
	out := render(lines, 40, 24)
	for _, l := range strings.Split(out, "\r\n") {
		l = strings.TrimPrefix(l, ansiHome)
		if !strings.Contains(l, ansiReverse) && !strings.Contains(l, ansiBold) && len(strings.TrimSuffix(l, ansiClearEOL)) > 40 {
			t.Errorf("line not cut to 40 columns: %q", l)
		}
	}
}
