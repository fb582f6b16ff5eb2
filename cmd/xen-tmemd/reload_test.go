package main

import (
	"testing"
	"time"

	"github.com/xentmem/xentmem/pools"
)

// pressureHarness is a 1 GiB host where a scanning guest has put 8 MiB
// into tmem and a large domain has taken all free memory but 8 MiB: at the
// first tick available memory is below the critical watermark (20 MiB), so
// the policy flushes and freezes the guest.
func pressureHarness(t *testing.T, dryRun bool) *simHarness {
	t.Helper()
	h := newSimHarness(t, simHarnessConfig{dryRun: dryRun, guests: []SimGuest{
		{Name: "batch", MemoryMiB: 16, Workload: "scan", WorkingMiB: 64, CacheMiB: 1},
	}})
	h.drive(t, "batch", 9*256)
	h.squeeze(t, 8)
	h.d.tick()
	h.d.mu.Lock()
	frozen := h.d.policy.Frozen()
	h.d.mu.Unlock()
	if len(frozen) != 1 || frozen[0] != h.id("batch") {
		t.Fatalf("the policy froze %v, want batch", frozen)
	}
	return h
}

// TestReloadPolicyFreezes: a reload (SIGHUP) replaces the policy; what
// the old one froze must not stay frozen forever, since the new one does
// not know it froze it.
func TestReloadPolicyFreezes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		dryRun     bool
		wantFrozen bool // right after the reload
	}{
		{"thawed at the reload", false, false},
		{"dry run: nothing was frozen, nothing is thawed", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := pressureHarness(t, tc.dryRun)
			batch := h.id("batch")
			wasFrozen := h.list(t).Client(batch).Frozen
			if wasFrozen == tc.dryRun {
				t.Fatalf("batch frozen in LIST: %v (dry run %v)", wasFrozen, tc.dryRun)
			}
			thaws := h.logs.FilterMessage("thaw").Len()
			if err := h.d.reconfigure(&h.cfg); err != nil {
				t.Fatal(err)
			}
			if got := h.list(t).Client(batch).Frozen; got != tc.wantFrozen {
				t.Errorf("batch frozen after the reload: %v, want %v", got, tc.wantFrozen)
			}
			wantThaws := 1
			if tc.dryRun {
				wantThaws = 0
			}
			if n := h.logs.FilterMessage("thaw").Len() - thaws; n != wantThaws {
				t.Errorf("%d thaws logged at the reload, want %d", n, wantThaws)
			}
			// The new policy runs and may freeze again; it knows it then.
			for range 5 {
				time.Sleep(2 * time.Millisecond)
				h.d.tick()
			}
			h.d.mu.Lock()
			byPolicy := h.d.policy.Frozen()
			h.d.mu.Unlock()
			if got := h.list(t).Client(batch).Frozen; got && !tc.dryRun && len(byPolicy) == 0 {
				t.Errorf("batch frozen, but not by the running policy")
			}
		})
	}
}

// TestReloadDuringReservation: a reload while a reservation is pending
// waits for the running policy to answer it (and thaw what it froze for
// it), then takes over.
func TestReloadDuringReservation(t *testing.T) {
	h := pressureHarness(t, false)
	now := time.Now()
	h.d.mu.Lock()
	old := h.d.policy
	r := old.Reserve(now, "big", 12<<10, now.Add(time.Minute))
	h.d.reserves = append(h.d.reserves, r)
	h.d.mu.Unlock()

	if err := h.d.reconfigure(&h.cfg); err != nil {
		t.Fatal(err)
	}
	h.d.mu.Lock()
	swapped, pending := h.d.policy != old, h.d.next != nil
	h.d.mu.Unlock()
	if swapped || !pending {
		t.Fatalf("reload during a reservation: swapped %v, pending %v", swapped, pending)
	}
	for i := 0; r.State() == pools.ReservePending; i++ {
		if i == 20 {
			t.Fatalf("reservation still pending: %v", r)
		}
		time.Sleep(2 * time.Millisecond)
		h.d.tick()
	}
	if r.State() != pools.ReserveDone {
		t.Fatalf("reservation: %v", r)
	}
	h.d.mu.Lock()
	swapped, pending = h.d.policy != old, h.d.next != nil
	h.d.mu.Unlock()
	if !swapped || pending {
		t.Errorf("after the reservation: swapped %v, pending %v", swapped, pending)
	}
	for _, c := range h.list(t).Clients {
		if c.Frozen {
			t.Errorf("client %d still frozen after the reservation and the reload", c.ID)
		}
	}
}
