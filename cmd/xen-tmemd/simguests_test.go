package main

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestSimGuestNames: the guest table the daemon asks for once per client
// and tick is built once, and rebuilt when a guest starts or stops.
func TestSimGuestNames(t *testing.T) {
	h := newSimHarness(t, simHarnessConfig{})
	g := h.guests
	a, b := g.names(), g.names()
	if reflect.ValueOf(a).UnsafePointer() != reflect.ValueOf(b).UnsafePointer() {
		t.Errorf("names rebuilt without a change")
	}
	got := map[uint16]string{}
	for id, info := range a {
		got[id] = info.Name
	}
	if diff := cmp.Diff(map[uint16]string{h.id("web1"): "web1", h.id("swap1"): "swap1"}, got); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	if p := a[h.id("swap1")].Settings.Priority; p == nil || *p != 2 {
		t.Errorf("swap1's priority: %v", p)
	}
	g.stop(h.byName["web1"])
	if c := g.names(); len(c) != 1 || c[h.id("swap1")].Name != "swap1" {
		t.Errorf("after web1 stopped: %v", c)
	}
}

// TestSimGuestFrontswapRoom: a frontswap guest can swap its working set
// into tmem: Xen charges persistent pages to the domain, so its maximum is
// above its memory.
func TestSimGuestFrontswapRoom(t *testing.T) {
	h := newSimHarness(t, simHarnessConfig{})
	for _, d := range h.sim.Domains() {
		if d.ID == h.id("swap1") && d.MaxPages != (64+4)*256 {
			t.Errorf("swap1: max %d pages, want %d", d.MaxPages, (64+4)*256)
		}
	}
	h.drive(t, "swap1", 3000)
	c := h.list(t).Client(h.id("swap1"))
	if c == nil || len(c.Pools) != 1 || c.Pools[0].Pages == 0 || c.Pools[0].NoMemPuts != 0 {
		t.Errorf("swap1's persistent pool: %+v", c)
	}
}

func TestWakeEvery(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		want time.Duration
	}{
		{8000, 50 * time.Millisecond},
		{20, 50 * time.Millisecond},
		{10, 100 * time.Millisecond},
		{1, time.Second},
		{0.25, time.Second}, // an access every fourth wake-up
	} {
		if got := wakeEvery(tc.rate); got != tc.want {
			t.Errorf("wakeEvery(%g) = %v, want %v", tc.rate, got, tc.want)
		}
	}
}
