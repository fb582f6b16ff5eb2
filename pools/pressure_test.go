package pools_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/xentmem/xentmem/pools"
)

var approx = cmpopts.EquateApprox(0, 1e-9)

func TestAssessMemory(t *testing.T) {
	tests := []struct {
		name              string
		freeKiB, claimKiB uint64
		zone              pools.Zone
		memory            float64
	}{
		{"well above high", 200 * miB, 0, pools.ZoneCalm, 0},
		{"at high", 128 * miB, 0, pools.ZoneCalm, 0},
		{"between low and high", 96 * miB, 0, pools.ZoneNormal, 0.25},
		{"at low", 64 * miB, 0, pools.ZoneNormal, 0.5},
		{"between critical and low", 48 * miB, 0, pools.ZoneLow, 0.75},
		{"below critical", 16 * miB, 0, pools.ZoneCritical, 1},
		{"nothing free", 0, 0, pools.ZoneCritical, 1},
		{"claims count against free", 100 * miB, 60 * miB, pools.ZoneLow, 0.875},
		{"claims above free", 10 * miB, 60 * miB, pools.ZoneCritical, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := pools.Snapshot{Time: t0, Host: pools.Host{TotalKiB: 4 * giB, FreeKiB: tt.freeKiB, OutstandingKiB: tt.claimKiB}}
			got := pools.Assess(snap, nil, testWatermarks, pools.WeightXen)
			want := pools.Pressure{
				Limits:   pools.Limits{CriticalKiB: 32 * miB, LowKiB: 64 * miB, HighKiB: 128 * miB},
				AvailKiB: subSat(tt.freeKiB, tt.claimKiB),
				Zone:     tt.zone, Memory: tt.memory, Score: tt.memory, CompressScore: tt.memory,
				CapacityPages: subSat(subSat(tt.freeKiB, tt.claimKiB), 128*miB) / 4,
			}
			if d := cmp.Diff(want, got, approx, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("Assess mismatch (-want +got):\n%s", d)
			}
		})
	}
}

func subSat(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

func TestWatermarksLimits(t *testing.T) {
	tests := []struct {
		name  string
		w     pools.Watermarks
		total uint64
		want  pools.Limits
	}{
		{"defaults are percentages", pools.Watermarks{}, 1000 * miB,
			pools.Limits{CriticalKiB: 20 * miB, LowKiB: 50 * miB, HighKiB: 80 * miB}},
		{"absolute", testWatermarks, 1000 * miB,
			pools.Limits{CriticalKiB: 32 * miB, LowKiB: 64 * miB, HighKiB: 128 * miB}},
		{"percent", pools.Watermarks{Critical: pools.Level{Percent: 1}, Low: pools.Level{Percent: 10}, High: pools.Level{Percent: 50}},
			4000, pools.Limits{CriticalKiB: 40, LowKiB: 400, HighKiB: 2000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, tt.w.Limits(tt.total)); d != "" {
				t.Errorf("Limits mismatch (-want +got):\n%s", d)
			}
		})
	}
}

func TestAssessFairShares(t *testing.T) {
	// Global Ec 3000 pages, available exactly at the high watermark (no
	// headroom). dom3 has only a persistent pool and gets no share.
	snap := func(wA, wB uint32) pools.Snapshot {
		return pools.Snapshot{
			Time:   t0,
			Host:   pools.Host{TotalKiB: 4 * giB, FreeKiB: 128 * miB},
			Global: pools.Global{EphPages: 3000},
			Clients: []pools.Client{
				{DomID: 1, Weight: wA, EphPages: 2400, Pools: []pools.Pool{ephPool(0, 2400, 0, 0, 0, 0)}},
				{DomID: 2, Weight: wB, EphPages: 600, Pools: []pools.Pool{ephPool(0, 600, 0, 0, 0, 0)}},
				{DomID: 3, Pools: []pools.Pool{persPool(0, 50, 50)}},
			},
		}
	}
	tests := []struct {
		name   string
		wA, wB uint32
		mode   pools.WeightMode
		fairA  uint64
		fairB  uint64
	}{
		{"default weights share equally", 0, 0, pools.WeightXen, 1500, 1500},
		{"equal weights share equally", 7, 7, pools.WeightProportional, 1500, 1500},
		{"proportional", 100, 300, pools.WeightProportional, 750, 2250},
		{"xen: a higher weight gets less", 100, 300, pools.WeightXen, 2250, 750},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pools.Assess(snap(tt.wA, tt.wB), nil, testWatermarks, tt.mode)
			over := func(pages, fair uint64) float64 { return min(1, max(0, float64(pages)/float64(fair)-1)) }
			want := []pools.ClientPressure{
				{DomID: 1, EphPages: 2400, FairPages: tt.fairA, Over: over(2400, tt.fairA)},
				{DomID: 2, EphPages: 600, FairPages: tt.fairB, Over: over(600, tt.fairB)},
				{DomID: 3},
			}
			for i := range want[:2] {
				want[i].Score = want[i].Over // no rates: the pool score is the excess alone
			}
			if d := cmp.Diff(want, got.Clients, approx); d != "" {
				t.Errorf("clients mismatch (-want +got):\n%s", d)
			}
			if got.CapacityPages != 3000 {
				t.Errorf("capacity = %d pages, want 3000", got.CapacityPages)
			}
		})
	}
}

func TestAssessScores(t *testing.T) {
	// Over 10 s: 500 evictions, 500 successful ephemeral puts (E = 0.5);
	// dom1's pool: 1000 puts of which 200 failed (F = 0.2), and it holds
	// 2400 pages against a fair share of 1500 (O = 0.6).
	prev := pools.Snapshot{
		Time:   t0,
		Host:   pools.Host{TotalKiB: 4 * giB, FreeKiB: 200 * miB},
		Global: pools.Global{EphPages: 3000, Evictions: 1000, EphPuts: 1000},
		Clients: []pools.Client{
			{DomID: 1, EphPages: 2400, Pools: []pools.Pool{ephPool(0, 2400, 1000, 0, 0, 0), persPool(1, 10, 10)}},
			{DomID: 2, EphPages: 600, Pools: []pools.Pool{ephPool(0, 600, 1000, 0, 0, 0)}},
		},
	}
	cur := prev
	cur.Time = t0.Add(10 * time.Second)
	cur.Host.FreeKiB = 128 * miB
	cur.Global.Evictions, cur.Global.EphPuts = 1500, 1500
	cur.Clients = []pools.Client{
		{DomID: 1, EphPages: 2400, Pools: []pools.Pool{ephPool(0, 2400, 2000, 200, 0, 0), persPool(1, 10, 10)}},
		{DomID: 2, EphPages: 600, Pools: []pools.Pool{ephPool(0, 600, 1000, 0, 0, 0)}},
	}
	rs := pools.Rates(prev, cur)
	got := pools.Assess(cur, &rs, testWatermarks, pools.WeightXen)

	f := 200.0 / 1000 // only dom1's pool put anything
	want := pools.Pressure{
		Limits:   pools.Limits{CriticalKiB: 32 * miB, LowKiB: 64 * miB, HighKiB: 128 * miB},
		AvailKiB: 128 * miB, Zone: pools.ZoneCalm,
		Evictions: 0.5, FailedPuts: f,
		Score:         1 - (1-0.5)*(1-f),
		Turnover:      0.5, // no flush by the policy: every eviction was Xen's
		CompressScore: 1 - (1-0.5)*(1-f),
		CapacityPages: 3000,
		Clients: []pools.ClientPressure{
			{DomID: 1, EphPages: 2400, FairPages: 1500, Over: 0.6, Score: 1 - 0.8*0.5*0.4},
			{DomID: 2, EphPages: 600, FairPages: 1500, Score: 0.5},
		},
		Pools: []pools.PoolPressure{
			{DomID: 1, PoolID: 0, Pages: 2400, FailedPuts: 0.2, Score: 1 - 0.8*0.5*0.4},
			{DomID: 2, PoolID: 0, Pages: 600, Score: 0.5},
		},
	}
	if d := cmp.Diff(want, got, approx); d != "" {
		t.Errorf("Assess mismatch (-want +got):\n%s", d)
	}
}

func TestZoneString(t *testing.T) {
	got := []string{pools.ZoneCalm.String(), pools.ZoneNormal.String(), pools.ZoneLow.String(), pools.ZoneCritical.String(), pools.Zone(9).String()}
	want := []string{"calm", "normal", "low", "critical", "Zone(9)"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Zone strings (-want +got):\n%s", d)
	}
}
