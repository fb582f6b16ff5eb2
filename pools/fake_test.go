package pools_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xentmem/xentmem/pools"
)

// t0 is the start of every synthetic sequence; tick is the daemon period.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	tick = 10 * time.Second
	miB  = 1024 // KiB
	giB  = 1024 * miB
)

// testWatermarks are absolute so the arithmetic in the tests is easy:
// critical 32 MiB, low 64 MiB, high 128 MiB.
var testWatermarks = pools.Watermarks{
	Critical: pools.Level{KiB: 32 * miB},
	Low:      pools.Level{KiB: 64 * miB},
	High:     pools.Level{KiB: 128 * miB},
}

// ephPool returns a private ephemeral pool with consistent counters:
// puts of which failed failed, gets of which hits hit.
func ephPool(id int, pages, puts, failed, gets, hits uint64) pools.Pool {
	return pools.Pool{ID: id, Pages: pages, Puts: puts, PutsOK: puts - failed, PutsFailed: failed, Gets: gets, GetsOK: hits}
}

// persPool returns a private persistent pool.
func persPool(id int, pages, puts uint64) pools.Pool {
	return pools.Pool{ID: id, Persistent: true, Pages: pages, Puts: puts, PutsOK: puts}
}

// fakeHost is a tiny in-memory hypervisor for policy tests: it hands out
// snapshots and executes actions the way Xen would, roughly. Tests change
// its fields between steps to script a sequence.
type fakeHost struct {
	now  time.Time
	snap pools.Snapshot
	// flushYield is the fraction of a flush Xen really frees (1 when 0).
	flushYield float64
	// executed records every action applied, as short strings.
	executed []string
}

func newFakeHost(freeKiB, freeableKiB uint64, clients ...pools.Client) *fakeHost {
	return &fakeHost{
		now: t0,
		snap: pools.Snapshot{
			Host:    pools.Host{TotalKiB: 4 * giB, FreeKiB: freeKiB, FreeableKiB: freeableKiB},
			Global:  pools.Global{EphPages: freeableKiB / pools.PageKiB},
			Clients: clients,
		},
	}
}

// take returns a deep copy of the current state at the current time.
func (f *fakeHost) take() pools.Snapshot {
	s := f.snap
	s.Time = f.now
	s.Clients = make([]pools.Client, len(f.snap.Clients))
	for i, c := range f.snap.Clients {
		c.Pools = append([]pools.Pool(nil), c.Pools...)
		s.Clients[i] = c
	}
	return s
}

func (f *fakeHost) client(domid uint16) *pools.Client {
	for i := range f.snap.Clients {
		if f.snap.Clients[i].DomID == domid {
			return &f.snap.Clients[i]
		}
	}
	return nil
}

// apply executes the actions that are not dry-run.
func (f *fakeHost) apply(acts []pools.Action) {
	for _, a := range acts {
		if a.DryRun {
			continue
		}
		f.executed = append(f.executed, short(a))
		set := func(fn func(c *pools.Client)) {
			for i := range f.snap.Clients {
				if a.DomID == pools.AllClients || f.snap.Clients[i].DomID == a.DomID {
					fn(&f.snap.Clients[i])
				}
			}
		}
		switch a.Kind {
		case pools.ActionFlush:
			y := f.flushYield
			if y == 0 {
				y = 1
			}
			freed := min(uint64(float64(a.KiB)*y), f.snap.Host.FreeableKiB)
			f.snap.Host.FreeKiB += freed
			f.snap.Host.FreeableKiB -= freed
			f.snap.Global.Evictions += freed / pools.PageKiB
			f.snap.Global.EphPages -= min(f.snap.Global.EphPages, freed/pools.PageKiB)
		case pools.ActionFreeze:
			set(func(c *pools.Client) { c.Frozen = true })
		case pools.ActionThaw:
			set(func(c *pools.Client) { c.Frozen = false })
		case pools.ActionSetWeight:
			set(func(c *pools.Client) { c.Weight = a.Weight })
		case pools.ActionSetCompress:
			set(func(c *pools.Client) { c.Compress = a.Compress })
		}
	}
}

// step takes a snapshot, runs the policy, applies its actions, advances
// the clock by one tick and returns the actions in short form.
func (f *fakeHost) step(t *testing.T, p *pools.Policy) []string {
	t.Helper()
	acts := p.Step(f.take())
	checkActions(t, acts)
	f.apply(acts)
	f.now = f.now.Add(tick)
	return shorts(acts)
}

// checkActions fails the test for an action without a reason.
func checkActions(t *testing.T, acts []pools.Action) {
	t.Helper()
	for _, a := range acts {
		if a.Reason == "" {
			t.Errorf("action %v has no reason", a)
		}
	}
}

// short renders an action without its reason: "flush all 79872",
// "freeze 3", "weight 3 40", "compress 3 on", with a "would " prefix in
// dry-run mode.
func short(a pools.Action) string {
	target := "all"
	if a.DomID != pools.AllClients {
		target = fmt.Sprint(a.DomID)
	}
	var s string
	switch a.Kind {
	case pools.ActionFlush:
		s = fmt.Sprintf("flush %s %d", target, a.KiB)
	case pools.ActionSetWeight:
		s = fmt.Sprintf("weight %s %d", target, a.Weight)
	case pools.ActionSetCompress:
		s = fmt.Sprintf("compress %s %v", target, map[bool]string{true: "on", false: "off"}[a.Compress])
	default:
		s = fmt.Sprintf("%v %s", a.Kind, target)
	}
	if a.DryRun {
		s = "would " + s
	}
	return s
}

func shorts(acts []pools.Action) []string {
	if len(acts) == 0 {
		return nil
	}
	out := make([]string, len(acts))
	for i, a := range acts {
		out[i] = short(a)
	}
	return out
}

// mustPolicy builds a policy or fails the test.
func mustPolicy(t testing.TB, cfg *pools.PolicyConfig) *pools.Policy {
	t.Helper()
	p, err := pools.NewPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// joinSteps renders per-step actions as "1: a, b" lines for diffs.
func joinSteps(steps [][]string) string {
	var b strings.Builder
	for i, s := range steps {
		if len(s) > 0 {
			fmt.Fprintf(&b, "%d: %s\n", i, strings.Join(s, ", "))
		}
	}
	return b.String()
}
