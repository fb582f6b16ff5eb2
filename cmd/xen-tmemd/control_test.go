package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/xentmem/xentmem/hypercall/xensim"
	"github.com/xentmem/xentmem/internal/control"
	"github.com/xentmem/xentmem/xenctl"
)

// The control API served by the daemon over the real simulator and the
// real xenctl client, through control.Server.ServeConn on a net.Pipe:
// every op of docs/control-api.md, checked against what LIST says.

// busyHarness is a harness whose guests have put pages into tmem and that
// has ticked once.
func busyHarness(t *testing.T, hc simHarnessConfig) *simHarness {
	t.Helper()
	h := newSimHarness(t, hc)
	h.drive(t, "web1", 5000)
	h.drive(t, "swap1", 3000)
	h.d.tick()
	if _, err := h.d.snapshot(); err != nil {
		t.Fatalf("first tick: %v", err)
	}
	return h
}

func TestControlStatus(t *testing.T) {
	h := busyHarness(t, simHarnessConfig{})
	cl := h.client(t)
	var st StatusResult
	ctlCall(t, cl, control.OpStatus, nil, &st)
	want := StatusResult{Mode: "sim", Xen: "4.12.4", Generation: h.xen.Generation().String(), TmemOK: true,
		Ticks: 1, TotalKiB: 1024 << 10, Domains: 3, Clients: 2, Actions: map[string]uint64{}, Libvirt: "off"}
	got := st
	// What the simulator computed: checked for plausibility, not value.
	if got.FreeKiB == 0 || got.FreeKiB >= got.TotalKiB || got.LastTick.IsZero() || got.Zone == "" || !strings.Contains(got.Tmem, "tmem enabled") {
		t.Errorf("status = %+v", got)
	}
	got.FreeKiB, got.FreeableMiB, got.LastTick, got.Zone, got.HostScore, got.Tmem = 0, 0, time.Time{}, "", 0, ""
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

func TestControlList(t *testing.T) {
	h := busyHarness(t, simHarnessConfig{})
	cl := h.client(t)
	for _, tc := range []struct {
		name string
		args *control.ListArgs
		cli  uint16
		long bool
	}{
		{"all short", &control.ListArgs{}, xenctl.AllClients, false},
		{"all long", &control.ListArgs{Long: true}, xenctl.AllClients, true},
		{"all explicit", &control.ListArgs{DomainArgs: control.DomainArgs{All: true}, Long: true}, xenctl.AllClients, true},
		{"by name", &control.ListArgs{DomainArgs: control.DomainArgs{Domain: "web1"}, Long: true}, h.id("web1"), true},
		{"by id", &control.ListArgs{DomainArgs: control.DomainArgs{Domain: "2"}}, h.id("swap1"), false},
		{"by domN", &control.ListArgs{DomainArgs: control.DomainArgs{Domain: "dom2"}, Long: true}, h.id("swap1"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res listReply
			ctlCall(t, cl, control.OpList, tc.args, &res)
			want, err := h.xen.List(tc.cli, tc.long)
			if err != nil {
				t.Fatal(err)
			}
			if res.Text != string(want) {
				t.Errorf("text differs from xenctl List:\n got %q\nwant %q", res.Text, want)
			}
			var parsed struct{ Clients []struct{ ID uint16 } }
			if err := json.Unmarshal(res.List, &parsed); err != nil || len(parsed.Clients) == 0 {
				t.Errorf("parsed list %s: %v", res.List, err)
			}
			wantNames := map[string]string{"0": "Domain-0", "1": "web1", "2": "swap1"}
			if diff := cmp.Diff(wantNames, res.Names); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
			if len(res.Domains) != 3 || res.Domains[1].Name != "web1" || res.Domains[1].TotPages != 64*256 || res.Version != "4.12.4" {
				t.Errorf("domains = %+v, xen %q", res.Domains, res.Version)
			}
		})
	}
}

// listReply is a ListResult as a client decodes it. The parsed list stays
// raw: xenctl.List cannot be decoded from JSON (ListPoolType has
// MarshalText but no UnmarshalText).
type listReply struct {
	Text    string            `json:"text"`
	List    json.RawMessage   `json:"list"`
	Names   map[string]string `json:"names"`
	Domains []ListDomain      `json:"domains"`
	Version string            `json:"xen"`
}

// TestControlClientOps changes client state through the API and reads it
// back from LIST. The rows run in order on one daemon.
func TestControlClientOps(t *testing.T) {
	h := busyHarness(t, simHarnessConfig{})
	cl := h.client(t)
	events, stop := h.d.bus.subscribe()
	defer stop()
	web1, swap1 := h.id("web1"), h.id("swap1")
	type state struct {
		Frozen   bool
		Weight   int64
		Compress bool
	}
	read := func(t *testing.T) map[uint16]state {
		out := map[uint16]state{}
		for _, c := range h.list(t).Clients {
			out[c.ID] = state{Frozen: c.Frozen, Weight: c.Weight, Compress: c.Compress}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		op   string
		args any
		want map[uint16]state
	}{
		{"freeze by name", control.OpFreeze, &control.DomainArgs{Domain: "web1"},
			map[uint16]state{web1: {Frozen: true}, swap1: {}}},
		{"thaw by id", control.OpThaw, &control.DomainArgs{Domain: "1"},
			map[uint16]state{web1: {}, swap1: {}}},
		{"freeze all", control.OpFreeze, &control.DomainArgs{All: true},
			map[uint16]state{web1: {Frozen: true}, swap1: {Frozen: true}}},
		{"destroy thaws (Xen's DESTROY)", control.OpDestroy, &control.DomainArgs{Domain: "dom2"},
			map[uint16]state{web1: {Frozen: true}, swap1: {}}},
		{"thaw all", control.OpThaw, &control.DomainArgs{All: true},
			map[uint16]state{web1: {}, swap1: {}}},
		{"set weight", control.OpSet, &control.SetArgs{DomainArgs: control.DomainArgs{Domain: "web1"}, Weight: hptr[uint32](7)},
			map[uint16]state{web1: {Weight: 7}, swap1: {}}},
		{"set compress", control.OpSet, &control.SetArgs{DomainArgs: control.DomainArgs{Domain: "swap1"}, Compress: hptr(true)},
			map[uint16]state{web1: {Weight: 7}, swap1: {Compress: true}}},
		{"set both", control.OpSet, &control.SetArgs{DomainArgs: control.DomainArgs{Domain: "swap1"}, Weight: hptr[uint32](3), Compress: hptr(false)},
			map[uint16]state{web1: {Weight: 7}, swap1: {Weight: 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctlCall(t, cl, tc.op, tc.args, nil)
			if diff := cmp.Diff(tc.want, read(t)); diff != "" {
				t.Errorf("LIST after %s (-want +got):\n%s", tc.op, diff)
			}
			select {
			case ev := <-events:
				if ev.Kind != "control" || ev.Message != tc.op {
					t.Errorf("event %+v, want kind control, message %s", ev, tc.op)
				}
			default:
				t.Errorf("no event for %s", tc.op)
			}
		})
	}
}

func TestControlFlushFreeable(t *testing.T) {
	h := busyHarness(t, simHarnessConfig{})
	cl := h.client(t)
	var fr map[string]uint64
	ctlCall(t, cl, control.OpFreeable, nil, &fr)
	want, err := h.xen.QueryFreeableMiB()
	if err != nil {
		t.Fatal(err)
	}
	if fr["freeable_mib"] != want || want == 0 {
		t.Errorf("freeable = %v, xenctl says %d MiB", fr, want)
	}
	before := h.list(t).Client(h.id("web1")).EphPages
	var res map[string]uint64
	ctlCall(t, cl, control.OpFlush, &control.FlushArgs{KiB: 1024}, &res)
	after := h.list(t).Client(h.id("web1")).EphPages
	if res["freed_kib"] < 1024 || after >= before {
		t.Errorf("flush 1024 KiB: freed %v, web1's ephemeral pages %d → %d", res, before, after)
	}
}

func TestControlSharedAuthPoolCreate(t *testing.T) {
	const uuid = "01234567-89ab-cdef-fedc-ba9876543210"
	h := busyHarness(t, simHarnessConfig{})
	cl := h.client(t)
	web1 := h.id("web1")

	t.Run("shared-auth", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			args     *control.SharedAuthArgs
			wantCode string
		}{
			{"authorise", &control.SharedAuthArgs{DomainArgs: control.DomainArgs{Domain: "web1"}, UUID: uuid, Authorise: true}, ""},
			{"revoke", &control.SharedAuthArgs{DomainArgs: control.DomainArgs{Domain: "web1"}, UUID: uuid}, ""},
			{"bad uuid", &control.SharedAuthArgs{DomainArgs: control.DomainArgs{Domain: "web1"}, UUID: "not-a-uuid", Authorise: true}, control.CodeBadRequest},
			{"no such domain", &control.SharedAuthArgs{DomainArgs: control.DomainArgs{Domain: "nope"}, UUID: uuid, Authorise: true}, control.CodeNoDomain},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var res map[string]bool
				if code, msg := ctlCode(t, cl, control.OpSharedAuth, tc.args, &res); code != tc.wantCode {
					t.Errorf("code %q (%s), want %q", code, msg, tc.wantCode)
				}
			})
		}
	})

	t.Run("pool-create", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			args     *control.PoolCreateArgs
			wantPool int
			wantType string
		}{
			{"ephemeral", &control.PoolCreateArgs{Domain: "web1"}, 1, "EP"},
			{"persistent", &control.PoolCreateArgs{Domain: "web1", Persistent: true}, 2, "PP"},
			{"shared", &control.PoolCreateArgs{Domain: "web1", Shared: true, UUID: uuid}, 3, "ES"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if tc.args.Shared {
					ctlCall(t, cl, control.OpSharedAuth, &control.SharedAuthArgs{DomainArgs: control.DomainArgs{Domain: "web1"}, UUID: uuid, Authorise: true}, nil)
				}
				var res map[string][]int
				ctlCall(t, cl, control.OpPoolCreate, tc.args, &res)
				if diff := cmp.Diff([]int{tc.wantPool}, res["pools"]); diff != "" {
					t.Errorf("pools (-want +got):\n%s", diff)
				}
				c := h.list(t).Client(web1)
				if len(c.Pools) != tc.wantPool+1 || int(c.Pools[tc.wantPool].ID) != tc.wantPool || c.Pools[tc.wantPool].Type.String() != tc.wantType {
					t.Errorf("LIST pools of web1: %+v", c.Pools)
				}
			})
		}
		if code, _ := ctlCode(t, cl, control.OpPoolCreate, &control.PoolCreateArgs{Domain: "web1", Shared: true, UUID: "xyz"}, nil); code != control.CodeBadRequest {
			t.Errorf("bad uuid: code %q", code)
		}
	})
}

func TestControlSaveRestore(t *testing.T) {
	h := busyHarness(t, simHarnessConfig{})
	cl := h.client(t)
	file := filepath.Join(t.TempDir(), "swap1.tmem")
	saved := h.list(t).Client(h.id("swap1"))
	if len(saved.Pools) != 1 || saved.Pools[0].Pages == 0 {
		t.Fatalf("swap1 has no persistent pages to save: %+v", saved.Pools)
	}

	ctlCall(t, cl, control.OpSave, &control.SaveArgs{Domain: "swap1", File: file}, nil)
	fi, err := os.Stat(file)
	if err != nil || fi.Size() < saved.Pools[0].Pages*4096 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved file: %v, %v", fi, err)
	}
	// Save refuses to overwrite, and leaves the file alone.
	if code, _ := ctlCode(t, cl, control.OpSave, &control.SaveArgs{Domain: "swap1", File: file}, nil); code != control.CodeFailed {
		t.Errorf("save over an existing file: code %q, want failed", code)
	}
	if fi2, err := os.Stat(file); err != nil || fi2.Size() != fi.Size() {
		t.Errorf("file changed by the refused save: %v %v", fi2, err)
	}
	if h.list(t).Client(h.id("swap1")).Frozen {
		t.Errorf("swap1 left frozen after save")
	}

	// Restore into a new domain, which the daemon must have seen first.
	id, err := h.sim.CreateDomain(xensim.DomainConfig{MemoryKiB: 64 << 10, MaxMemoryKiB: 128 << 10})
	if err != nil {
		t.Fatal(err)
	}
	dom := "dom" + strconv.Itoa(int(id))
	if code, _ := ctlCode(t, cl, control.OpRestore, &control.SaveArgs{Domain: dom, File: file}, nil); code != control.CodeNoDomain {
		t.Errorf("restore into a domain the daemon has not seen: code %q, want no-domain", code)
	}
	h.d.tick()
	ctlCall(t, cl, control.OpRestore, &control.SaveArgs{Domain: dom, File: file}, nil)
	got := h.list(t).Client(id)
	if got == nil || len(got.Pools) != 1 || !got.Pools[0].Persistent() {
		t.Fatalf("restored client: %+v", got)
	}
	// Xen's SAVE_GET_NEXT_PAGE never returns a pool's first page (the
	// simulator reproduces the cursor bug): one page fewer comes back.
	if g, w := got.Pools[0].Pages, saved.Pools[0].Pages; g != w-1 {
		t.Errorf("restored %d pages, saved pool had %d (want one fewer: Xen's cursor bug)", g, w)
	}
	// A second restore into the same domain fails: it has a client now.
	if code, _ := ctlCode(t, cl, control.OpRestore, &control.SaveArgs{Domain: dom, File: file}, nil); code == "" {
		t.Errorf("second restore succeeded")
	}
	if code, _ := ctlCode(t, cl, control.OpRestore, &control.SaveArgs{Domain: dom, File: file + ".missing"}, nil); code != control.CodeFailed {
		t.Errorf("restore from a missing file: code %q", code)
	}
}

func TestControlReserve(t *testing.T) {
	// A scanning guest puts 24 MiB into tmem, and a large domain takes all
	// free memory but 60 MiB: above the low watermark (51 MiB), so the
	// policy leaves tmem alone.
	hc := simHarnessConfig{interval: 50 * time.Millisecond, guests: []SimGuest{
		{Name: "batch", MemoryMiB: 16, Workload: "scan", WorkingMiB: 64, CacheMiB: 1, Priority: 0},
	}}
	h := newSimHarness(t, hc)
	h.drive(t, "batch", 25*256)
	h.squeeze(t, 60)
	h.run(t)
	cl := h.client(t)
	pi, err := h.xen.Physinfo()
	if err != nil {
		t.Fatal(err)
	}
	freeable, err := h.xen.QueryFreeableMiB()
	if err != nil {
		t.Fatal(err)
	}
	freeMiB := pi.FreeKiB() / 1024
	if freeable < 20 {
		t.Fatalf("tmem holds only %d MiB freeable (free %d MiB)", freeable, freeMiB)
	}
	t.Logf("before: %d MiB free, %d MiB freeable", freeMiB, freeable)

	t.Run("done", func(t *testing.T) {
		need := freeMiB + freeable/2
		var res ReserveResult
		ctlCall(t, cl, control.OpReserve, &control.ReserveArgs{MiB: need, Domain: "big", TimeoutMs: 10000}, &res)
		pi, err := h.xen.Physinfo()
		if err != nil {
			t.Fatal(err)
		}
		if !res.Done || res.FlushedKiB == 0 || pi.FreeKiB() < need*1024 {
			t.Errorf("reserve %d MiB: %+v; now %d MiB free", need, res, pi.FreeKiB()/1024)
		}
		// The reserver froze all of tmem while flushing and thaws it
		// afterwards, except what the policy itself froze (under critical
		// pressure) before.
		var frozen []uint16
		for _, c := range h.list(t).Clients {
			if c.Frozen {
				frozen = append(frozen, c.ID)
			}
		}
		h.d.mu.Lock()
		byPolicy := h.d.policy.Frozen()
		h.d.mu.Unlock()
		if diff := cmp.Diff(byPolicy, frozen, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("frozen clients after the reservation, want those the policy froze (-policy +LIST):\n%s", diff)
		}
	})
	t.Run("impossible", func(t *testing.T) {
		start := time.Now()
		code, msg := ctlCode(t, cl, control.OpReserve, &control.ReserveArgs{MiB: 100000, TimeoutMs: 500}, nil)
		if code != control.CodeTimeout || !strings.Contains(msg, "100000.0 MiB") {
			t.Errorf("code %q (%s), want timeout", code, msg)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("answered after %v", took)
		}
	})
}

func TestControlReserveWithoutTmem(t *testing.T) {
	for _, tc := range []struct {
		name       string
		version    string
		tmem       xensim.TmemMode
		freezeCode string // what a tmem op answers there
		freezeMsg  string
	}{
		{"xen 4.13 (no tmem)", "4.13.0", xensim.TmemEnabled, control.CodeUnsupported, "available in Xen 4.0–4.12"},
		{"tmem not built", "4.12.4", xensim.TmemNotBuilt, control.CodeUnavailable, "ENOSYS"},
		{"tmem disabled (4.4)", "4.4.0", xensim.TmemDisabled, control.CodeUnavailable, "boot Xen with tmem=1"},
		// 4.6–4.12 answer control ops with empty data when tmem is off.
		{"tmem disabled (4.12)", "4.12.4", xensim.TmemDisabled, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newSimHarness(t, simHarnessConfig{version: tc.version, tmem: tc.tmem, noGuests: true})
			h.run(t)
			cl := h.client(t)
			var st StatusResult
			ctlCall(t, cl, control.OpStatus, nil, &st)
			if st.TmemOK || st.Tmem == "" {
				t.Fatalf("status says tmem %v (%s)", st.TmemOK, st.Tmem)
			}
			var res ReserveResult
			ctlCall(t, cl, control.OpReserve, &control.ReserveArgs{MiB: 64}, &res)
			if !res.Done || !strings.Contains(res.Reason, "free already") {
				t.Errorf("small reservation: %+v", res)
			}
			code, msg := ctlCode(t, cl, control.OpReserve, &control.ReserveArgs{MiB: 1 << 20, TimeoutMs: 100}, nil)
			if code != control.CodeFailed || !strings.Contains(msg, "MiB free") || !strings.Contains(msg, st.Tmem) {
				t.Errorf("impossible reservation: %s: %s", code, msg)
			}
			if code, msg := ctlCode(t, cl, control.OpFreeze, &control.DomainArgs{All: true}, nil); code != tc.freezeCode || !strings.Contains(msg, tc.freezeMsg) {
				t.Errorf("freeze without tmem: %q: %s; want %q: …%s…", code, msg, tc.freezeCode, tc.freezeMsg)
			}
		})
	}
}

// TestControlNoDomain: every op that names a domain answers no-domain for
// one Xen does not have, and changes nothing.
func TestControlNoDomain(t *testing.T) {
	h := busyHarness(t, simHarnessConfig{})
	cl := h.client(t)
	before, err := h.xen.List(xenctl.AllClients, true)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		op   string
		args any
	}{
		{control.OpList, &control.ListArgs{DomainArgs: control.DomainArgs{Domain: "nope"}}},
		{control.OpFreeze, &control.DomainArgs{Domain: "nope"}},
		{control.OpThaw, &control.DomainArgs{Domain: "42"}},
		{control.OpDestroy, &control.DomainArgs{Domain: "dom42"}},
		{control.OpSet, &control.SetArgs{DomainArgs: control.DomainArgs{Domain: "nope"}, Weight: hptr[uint32](5)}},
		{control.OpSharedAuth, &control.SharedAuthArgs{DomainArgs: control.DomainArgs{Domain: "nope"}, UUID: "1-2", Authorise: true}},
		{control.OpPoolCreate, &control.PoolCreateArgs{Domain: "nope"}},
		{control.OpSave, &control.SaveArgs{Domain: "nope", File: filepath.Join(dir, "x")}},
		{control.OpRestore, &control.SaveArgs{Domain: "nope", File: filepath.Join(dir, "x")}},
	} {
		t.Run(tc.op, func(t *testing.T) {
			if code, msg := ctlCode(t, cl, tc.op, tc.args, nil); code != control.CodeNoDomain || !strings.Contains(msg, "no domain") {
				t.Errorf("code %q (%s), want no-domain", code, msg)
			}
		})
	}
	after, err := h.xen.List(xenctl.AllClients, true)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Errorf("LIST changed:\n%s\n%s", before, after)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Errorf("save for an unknown domain created the file")
	}
}

// TestControlSetCap: cap exists in Xen 4.0–4.7 only.
func TestControlSetCap(t *testing.T) {
	for _, tc := range []struct {
		version  string
		wantCode string
		wantMsg  []string
	}{
		{"4.6.0", "", nil},
		{"4.8.0", control.CodeUnsupported, []string{"Xen 4.8", "4.0–4.7"}},
		{"4.12.4", control.CodeUnsupported, []string{"Xen 4.12.4", "4.0–4.7"}},
	} {
		t.Run(tc.version, func(t *testing.T) {
			h := busyHarness(t, simHarnessConfig{version: tc.version})
			cl := h.client(t)
			before, _ := h.xen.List(xenctl.AllClients, true)
			code, msg := ctlCode(t, cl, control.OpSet, &control.SetArgs{DomainArgs: control.DomainArgs{Domain: "web1"}, Cap: hptr[uint32](9)}, nil)
			if code != tc.wantCode {
				t.Fatalf("set cap: code %q (%s), want %q", code, msg, tc.wantCode)
			}
			for _, w := range tc.wantMsg {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not name %q", msg, w)
				}
			}
			c := h.list(t).Client(h.id("web1"))
			switch {
			case code == "" && (!c.HasCap || c.Cap != 9):
				t.Errorf("LIST after set cap: ca %d (has %v)", c.Cap, c.HasCap)
			case code != "":
				if after, _ := h.xen.List(xenctl.AllClients, true); string(after) != string(before) {
					t.Errorf("refused set cap changed LIST")
				}
			}
		})
	}
}

// TestControlMalformed sends malformed requests as raw lines: each gets
// bad-request with its id where it has one, LIST does not change, and the
// connection keeps working.
func TestControlMalformed(t *testing.T) {
	h := busyHarness(t, simHarnessConfig{})
	h.d.tick()
	a, b := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &control.Server{Handle: h.d.handle, Subscribe: h.d.bus.subscribe}
	done := make(chan struct{})
	go func() { srv.ServeConn(ctx, b); close(done) }()
	t.Cleanup(func() { cancel(); a.Close(); <-done })
	r := bufio.NewReader(a)
	roundTrip := func(t *testing.T, line string) control.Reply {
		t.Helper()
		a.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := a.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
		reply, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		var rep control.Reply
		if err := json.Unmarshal(reply, &rep); err != nil {
			t.Fatalf("reply %q: %v", reply, err)
		}
		return rep
	}
	before, err := h.xen.List(xenctl.AllClients, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, line string
		id         uint64
	}{
		{"not json", `garbage`, 0},
		{"empty object", `{}`, 0},
		{"wrong version", `{"v":2,"id":3,"op":"freeze","args":{"all":true}}`, 3},
		{"unknown op", `{"v":1,"id":4,"op":"explode"}`, 4},
		{"unknown field", `{"v":1,"id":5,"op":"freeze","args":{"all":true,"really":true}}`, 5},
		{"unknown top-level field", `{"v":1,"id":6,"op":"status","x":1}`, 6},
		{"missing args", `{"v":1,"id":7,"op":"freeze"}`, 7},
		{"domain and all", `{"v":1,"id":8,"op":"freeze","args":{"domain":"web1","all":true}}`, 8},
		{"nothing to set", `{"v":1,"id":9,"op":"set","args":{"domain":"web1"}}`, 9},
		{"weight of the wrong type", `{"v":1,"id":10,"op":"set","args":{"domain":"web1","weight":"heavy"}}`, 10},
		{"negative weight", `{"v":1,"id":11,"op":"set","args":{"domain":"web1","weight":-1}}`, 11},
		{"flush too large", `{"v":1,"id":12,"op":"flush","args":{"kib":4294967295}}`, 12},
		{"shared without uuid", `{"v":1,"id":13,"op":"pool-create","args":{"domain":"web1","shared":true}}`, 13},
		{"reserve nothing", `{"v":1,"id":14,"op":"reserve","args":{"mib":0}}`, 14},
		{"args for status", `{"v":1,"id":15,"op":"status","args":{"domain":"web1"}}`, 15},
		{"trailing data", `{"v":1,"id":16,"op":"freeze","args":{"all":true}} {"v":1}`, 16},
		{"save without file", `{"v":1,"id":17,"op":"save","args":{"domain":"swap1"}}`, 17},
		{"bad uuid", `{"v":1,"id":18,"op":"shared-auth","args":{"all":true,"uuid":"zz","authorise":true}}`, 18},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := roundTrip(t, tc.line)
			if rep.OK || rep.Error == nil || rep.Error.Code != control.CodeBadRequest || rep.ID != tc.id {
				t.Errorf("reply %+v (error %+v), want bad-request with id %d", rep, rep.Error, tc.id)
			}
		})
	}
	after, err := h.xen.List(xenctl.AllClients, true)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Errorf("malformed requests changed LIST:\n%s\n%s", before, after)
	}
	if rep := roundTrip(t, `{"v":1,"id":99,"op":"status"}`); !rep.OK || rep.ID != 99 {
		t.Errorf("status after the malformed requests: %+v", rep)
	}
}
