package xenctl

import (
	"fmt"
	"testing"
)

// listBuildText returns a Xen 4.12 long-form all-clients listing with the
// given numbers of clients and pools per client. The counters come from a
// fixed pseudo-random sequence and keep the relations Xen's counters have
// (now ≤ max, successes ≤ attempts), so the text is the same on every call.
func listBuildText(clients, pools int) []byte {
	seed := uint64(0x9e3779b97f4a7c15)
	rnd := func(n uint64) uint64 { // xorshift64
		seed ^= seed << 13
		seed ^= seed >> 7
		seed ^= seed << 17
		return seed % n
	}
	pair := func(n uint64) (now, max uint64) {
		max = rnd(n)
		return rnd(max + 1), max
	}
	var b []byte
	ec, em := pair(1 << 20)
	b = fmt.Appendf(b, "G=Tt:%d,Te:%d,Cf:0,Af:%d,Pf:0,Ta:%d,Lm:0,Et:%d,Ea:%d,Rt:%d,Ra:%d,Rx:%d,Fp:0,"+
		"Ec:%d,Em:%d,Oc:%d,Om:%d,Nc:%d,Nm:%d,Pc:%d,Pm:%d,Fc:%d,Fm:%d,Sc:0,Sm:0,Ep:%d,Gd:0,Zt:0,Gz:0\n",
		rnd(1<<40), rnd(1<<20), rnd(100), rnd(4096), rnd(1<<30), rnd(1<<30), rnd(1<<16), rnd(1<<16), rnd(64),
		ec, em, rnd(1<<18), rnd(1<<18), rnd(1<<16), rnd(1<<16), ec, em, ec, em, rnd(1<<40))
	for c := range clients {
		domid := c + 1
		cec, cem := pair(1 << 18)
		b = fmt.Appendf(b, "C=CI:%d,ww:%d,co:%d,fr:%d,Tc:0,Ge:%d,Pp:%d,Gp:%d,"+
			"Ec:%d,Em:%d,cp:%d,cb:%d,cn:%d,cm:0\n",
			domid, rnd(1000), rnd(2), rnd(2), rnd(1<<32), rnd(1<<32), rnd(1<<32),
			cec, cem, rnd(1<<16), rnd(1<<28), rnd(1<<10))
		for p := range pools {
			kind := "EP"
			if p%2 == 1 {
				kind = "PP"
			}
			pc, pm := pair(1 << 18)
			oc, om := pair(1 << 12)
			nc, nm := pair(1 << 12)
			ps, pt := pair(1 << 32)
			gs, gt := pair(1 << 32)
			fs, ft := pair(1 << 24)
			os, ot := pair(1 << 16)
			b = fmt.Appendf(b, "P=CI:%d,PI:%d,PT:%s,U0:0,U1:0,Pc:%d,Pm:%d,Oc:%d,Om:%d,Nc:%d,Nm:%d,"+
				"ps:%d,pt:%d,pd:%d,pr:%d,px:%d,gs:%d,gt:%d,fs:%d,ft:%d,os:%d,ot:%d\n",
				domid, p, kind, pc, pm, oc, om, nc, nm, ps, pt, rnd(100), rnd(1<<16), pt-ps, gs, gt, fs, ft, os, ot)
		}
	}
	return append(b, "T\n"...)
}

var listBenchSizes = []struct{ clients, pools int }{{1, 2}, {16, 16}, {256, 16}}

func BenchmarkParseList(b *testing.B) {
	for _, sz := range listBenchSizes {
		text := listBuildText(sz.clients, sz.pools)
		b.Run(fmt.Sprintf("clients=%d,pools=%d", sz.clients, sz.pools), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if _, err := ParseList(text); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkFormatList(b *testing.B) {
	for _, sz := range listBenchSizes {
		text := listBuildText(sz.clients, sz.pools)
		l, err := ParseList(text)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("clients=%d,pools=%d", sz.clients, sz.pools), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				_ = l.Format()
			}
		})
	}
}

func TestListBuildText(t *testing.T) {
	text := listBuildText(3, 4)
	l := listMustParse(t, text)
	if got := string(l.Format()); got != string(text) {
		t.Errorf("round trip of the benchmark text differs")
	}
	if len(l.Clients) != 3 || len(l.Clients[2].Pools) != 4 || !l.Clients[2].Pools[3].Long {
		t.Errorf("benchmark text parsed to %d clients, want 3 with 4 long pools", len(l.Clients))
	}
	if string(listBuildText(3, 4)) != string(text) {
		t.Errorf("listBuildText is not deterministic")
	}
}
