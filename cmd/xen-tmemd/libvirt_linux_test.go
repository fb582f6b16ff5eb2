//go:build linux

package main

// These tests run the libvirt source against a real private libvirtd
// serving the test driver (internal/libvirttest). They skip when libvirtd is
// missing, and fail instead under CI=true.
//
// The test driver's domain ids stand in for Xen domids: running domains get
// 1, 2, 3… in start order and numbers are never reused, but no domain gets 0.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/xentmem/xentmem/internal/libvirttest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

// Log messages counted by the tests: one per state change.
const (
	msgConnected    = "connected to libvirt"
	msgReconnected  = "reconnected to libvirt"
	msgLost         = "lost connection to libvirt; reconnecting"
	msgCannot       = "cannot connect to libvirt; retrying"
	msgBadMetadata  = "ignoring tmem metadata of domain"
	testDomainName  = "test" // the domain test:///default starts with
	testDomainFirst = 1      // and its id
)

// lvHarness is a libvirt source running against a private daemon.
type lvHarness struct {
	d    *libvirttest.Daemon
	src  *libvirtSource
	logs *observer.ObservedLogs
}

// startLvSource runs a source for cfg (URI and socket filled in) until the
// test ends; cleanup checks that Run returns.
func startLvSource(t *testing.T, d *libvirttest.Daemon, cfg libvirtConfig) *lvHarness {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t, zaptest.Level(zapcore.InfoLevel)).Core()))
	if cfg.URI == "" {
		cfg.URI = libvirttest.TestURI
	}
	cfg.Socket = d.Socket()
	src := newLibvirtSource(cfg, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return &lvHarness{d: d, src: src, logs: logs}
}

func (h *lvHarness) waitStatus(t *testing.T, st SourceStatus, timeout time.Duration) time.Duration {
	t.Helper()
	return lvWaitFor(t, timeout, "state "+st.String(), func() bool { return h.src.State().Status == st })
}

func (h *lvHarness) count(msg string) int { return h.logs.FilterMessage(msg).Len() }

// nextEvent returns the next event of kind for the named domain, skipping
// others.
func (h *lvHarness) nextEvent(t *testing.T, kind DomainEventKind, name string) DomainEvent {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-h.src.Events():
			if ev.Kind == kind && ev.Name == name {
				return ev
			}
			t.Logf("skipping event %v %q", ev.Kind, ev.Name)
		case <-timeout:
			t.Fatalf("no %v event for %q", kind, name)
		}
	}
}

// lvDomainXML is a test-driver domain with the given tmem metadata element.
func lvDomainXML(name string, n int, meta string) string {
	if meta != "" {
		meta = "<metadata>" + meta + "</metadata>"
	}
	return fmt.Sprintf(`<domain type='test'><name>%s</name><uuid>00000000-0000-4000-8000-%012d</uuid>%s`+
		`<memory unit='MiB'>256</memory><os><type>xen</type></os></domain>`, name, n, meta)
}

func defineStart(t *testing.T, l *libvirt.Libvirt, xml string) libvirt.Domain {
	t.Helper()
	dom, err := l.DomainDefineXML(xml)
	if err != nil {
		t.Fatalf("define: %v", err)
	}
	dom, err = l.DomainCreateWithFlags(dom, 0)
	if err != nil {
		t.Fatalf("start %s: %v", dom.Name, err)
	}
	return dom
}

func TestLibvirtSourceEnumerate500(t *testing.T) {
	t.Parallel()
	const n = 500
	d := libvirttest.Start(t)
	drv := d.Connect(t, "")

	start := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				meta := ""
				switch {
				case i == 7:
					meta = `<t:tmem xmlns:t="` + defaultTmemNamespace + `"><t:weight>heavy</t:weight></t:tmem>`
				case i%50 == 0:
					meta = formatTmemMetadata(TmemSettings{Weight: lvPtr(uint32(i)), ReserveMiB: lvPtr[uint64](64)}, defaultTmemNamespace, "tmem")
				}
				dom, err := drv.DomainDefineXML(lvDomainXML(fmt.Sprintf("guest%03d", i), i, meta))
				if err == nil {
					_, err = drv.DomainCreateWithFlags(dom, 0)
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	t.Logf("defined and started %d domains in %v", n, time.Since(start))

	h := startLvSource(t, d, libvirtConfig{})
	took := h.waitStatus(t, SourceConnected, 30*time.Second)
	doms := h.src.Domains()
	t.Logf("source connected and enumerated %d domains (with metadata) in %v", len(doms), took)
	if len(doms) != n+1 {
		t.Fatalf("view has %d domains, want %d", len(doms), n+1)
	}
	seen := map[string]bool{}
	for id, m := range doms {
		if m.ID != id || m.Name == "" || seen[m.Name] {
			t.Fatalf("bad entry %d: %+v", id, m)
		}
		seen[m.Name] = true
	}
	g := h.mustByName(t, "guest150")
	if g.Settings.Weight == nil || *g.Settings.Weight != 150 || g.Settings.ReserveMiB == nil || *g.Settings.ReserveMiB != 64 {
		t.Errorf("guest150 settings = %+v", g.Settings)
	}
	if g.UUID != "00000000-0000-4000-8000-000000000150" {
		t.Errorf("guest150 uuid = %s", g.UUID)
	}
	if g := h.mustByName(t, "guest007"); !g.Settings.IsZero() {
		t.Errorf("guest007 has bad metadata but settings %+v", g.Settings)
	}
	if c := h.count(msgBadMetadata); c != 1 {
		t.Errorf("bad metadata logged %d times, want 1", c)
	}

	// The refresh on its own: full (all metadata) and incremental (cached).
	cfg := libvirtConfig{URI: libvirttest.TestURI, Socket: d.Socket()}.withDefaults()
	c, _, err := lvConnect(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close(true)
	s := newLibvirtSource(cfg, zap.NewNop())
	for _, full := range []bool{true, false} {
		t0 := time.Now()
		got, err := s.refresh(c, nil, full)
		if err != nil || got != n+1 {
			t.Fatalf("refresh = %d, %v", got, err)
		}
		t.Logf("refresh of %d domains, full=%v: %v", got, full, time.Since(t0))
	}
}

func (h *lvHarness) mustByName(t *testing.T, name string) DomainMeta {
	t.Helper()
	m, ok := h.src.ByName(name)
	if !ok {
		t.Fatalf("domain %q not in view", name)
	}
	return m
}

func TestLibvirtSourceLifecycleEvents(t *testing.T) {
	t.Parallel()
	d := libvirttest.Start(t)
	drv := d.Connect(t, "")
	h := startLvSource(t, d, libvirtConfig{})
	h.waitStatus(t, SourceConnected, 10*time.Second)
	if ev := <-h.src.Events(); ev.Kind != DomainsResynced {
		t.Fatalf("first event = %+v, want resynced", ev)
	}
	if m, ok := h.src.Domain(testDomainFirst); !ok || m.Name != testDomainName {
		t.Fatalf("built-in domain: %+v, %v", m, ok)
	}

	meta := formatTmemMetadata(TmemSettings{Weight: lvPtr[uint32](20), Compress: lvPtr(true)}, defaultTmemNamespace, "tmem")
	dom, err := drv.DomainDefineXML(lvDomainXML("ev1", 1, meta))
	if err != nil {
		t.Fatal(err)
	}
	if ev := h.nextEvent(t, DomainDefined, "ev1"); ev.HasID || ev.UUID != "00000000-0000-4000-8000-000000000001" {
		t.Errorf("defined event = %+v", ev)
	}

	t0 := time.Now()
	dom, err = drv.DomainCreateWithFlags(dom, 0)
	if err != nil {
		t.Fatal(err)
	}
	ev := h.nextEvent(t, DomainStarted, "ev1")
	t.Logf("start event after %v", time.Since(t0))
	if !ev.HasID || int32(ev.ID) != dom.ID {
		t.Fatalf("started event %+v, domain id %d", ev, dom.ID)
	}
	// The view is updated before the event is sent.
	m, ok := h.src.Domain(ev.ID)
	if !ok || m.Name != "ev1" || m.Settings.Weight == nil || *m.Settings.Weight != 20 || m.Settings.Compress == nil || !*m.Settings.Compress {
		t.Fatalf("view after start: %+v, %v", m, ok)
	}

	if err := drv.DomainSuspend(dom); err != nil {
		t.Fatal(err)
	}
	h.nextEvent(t, DomainSuspended, "ev1")
	if err := drv.DomainResume(dom); err != nil {
		t.Fatal(err)
	}
	h.nextEvent(t, DomainResumed, "ev1")

	newMeta := `<tmem><weight>30</weight></tmem>`
	if err := drv.DomainSetMetadata(dom, int32(libvirt.DomainMetadataElement), libvirt.OptString{newMeta},
		libvirt.OptString{"tmem"}, libvirt.OptString{defaultTmemNamespace}, libvirt.DomainAffectLive); err != nil {
		t.Fatal(err)
	}
	h.nextEvent(t, DomainMetadataChanged, "ev1")
	if m, _ := h.src.Domain(ev.ID); m.Settings.Weight == nil || *m.Settings.Weight != 30 || m.Settings.Compress != nil {
		t.Errorf("settings after metadata change: %+v", m.Settings)
	}

	if err := drv.DomainShutdown(dom); err != nil {
		t.Fatal(err)
	}
	stop := h.nextEvent(t, DomainStopped, "ev1")
	if !stop.HasID || stop.ID != ev.ID || stop.Detail != int32(libvirt.DomainEventStoppedShutdown) {
		t.Errorf("stopped event = %+v, want id %d (from the view) and detail shutdown", stop, ev.ID)
	}
	if _, ok := h.src.ByName("ev1"); ok {
		t.Error("stopped domain still in view")
	}

	dom, err = drv.DomainCreateWithFlags(dom, 0)
	if err != nil {
		t.Fatal(err)
	}
	again := h.nextEvent(t, DomainStarted, "ev1")
	if again.ID <= ev.ID || int32(again.ID) != dom.ID {
		t.Errorf("restart got id %d (domain %d), want a new id above %d", again.ID, dom.ID, ev.ID)
	}
	if m, _ := h.src.Domain(again.ID); m.Settings.Weight == nil || *m.Settings.Weight != 20 {
		// The live change was lost at shutdown; the persistent config says 20.
		t.Errorf("settings after restart: %+v", m.Settings)
	}
	if err := drv.DomainDestroy(dom); err != nil {
		t.Fatal(err)
	}
	if ev := h.nextEvent(t, DomainStopped, "ev1"); ev.ID != again.ID || ev.Detail != int32(libvirt.DomainEventStoppedDestroyed) {
		t.Errorf("destroy event = %+v", ev)
	}
	if err := drv.DomainUndefine(dom); err != nil {
		t.Fatal(err)
	}
	h.nextEvent(t, DomainUndefined, "ev1")
	if got := len(h.src.Domains()); got != 1 {
		t.Errorf("view has %d domains at the end, want 1", got)
	}
}

func TestLibvirtSourceDropsEventsWhenFull(t *testing.T) {
	t.Parallel()
	d := libvirttest.Start(t)
	drv := d.Connect(t, "")
	h := startLvSource(t, d, libvirtConfig{EventBuffer: 2})
	h.waitStatus(t, SourceConnected, 10*time.Second)
	dom, err := drv.DomainLookupByName(testDomainName)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := drv.DomainSuspend(dom); err != nil {
			t.Fatal(err)
		}
		if err := drv.DomainResume(dom); err != nil {
			t.Fatal(err)
		}
	}
	// 1 resync + 10 events into a buffer of 2.
	lvWaitFor(t, 10*time.Second, "dropped events", func() bool { return h.src.Dropped() == 9 })
	if n := h.logs.FilterMessage("libvirt event channel full; dropping events (counted)").Len(); n != 1 {
		t.Errorf("drop logged %d times, want 1", n)
	}
}

func TestLibvirtSourceReconnectAfterKill(t *testing.T) {
	t.Parallel()
	d := libvirttest.Start(t)
	drv := d.Connect(t, "")
	defineStart(t, drv, lvDomainXML("before", 1, `<t:tmem xmlns:t="`+defaultTmemNamespace+`"><t:compress>perhaps</t:compress></t:tmem>`))
	h := startLvSource(t, d, libvirtConfig{CallTimeout: 2 * time.Second, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond})
	h.waitStatus(t, SourceConnected, 10*time.Second)
	h.mustByName(t, "before")

	d.Kill()
	detect := h.waitStatus(t, SourceDisconnected, 5*time.Second)
	t.Logf("SIGKILL noticed after %v: %v", detect, h.src.State().Err)
	if err := h.src.State().Err; !errors.Is(err, errLibvirtDisconnected) {
		t.Errorf("state error = %v, want disconnected", err)
	}
	time.Sleep(500 * time.Millisecond) // several failed attempts
	if _, ok := h.src.ByName("before"); !ok {
		t.Error("the view is not kept while disconnected")
	}

	d.Restart()
	took := h.waitStatus(t, SourceConnected, 10*time.Second)
	t.Logf("reconnected %v after the restart", took)
	// test:///default starts over: only its built-in domain.
	lvWaitFor(t, 5*time.Second, "fresh view", func() bool {
		_, old := h.src.ByName("before")
		_, fresh := h.src.ByName(testDomainName)
		return !old && fresh
	})
	// The subscription is renewed on the new connection.
	drv2 := d.Connect(t, "")
	defineStart(t, drv2, lvDomainXML("after", 2, `<t:tmem xmlns:t="`+defaultTmemNamespace+`"><t:compress>perhaps</t:compress></t:tmem>`))
	h.nextEvent(t, DomainStarted, "after")
	h.mustByName(t, "after")

	for msg, want := range map[string]int{msgConnected: 1, msgLost: 1, msgReconnected: 1, msgCannot: 0,
		// One for "before", one for "after" (another UUID).
		msgBadMetadata: 2} {
		if got := h.count(msg); got != want {
			t.Errorf("%q logged %d times, want %d", msg, got, want)
		}
	}
}

func TestLibvirtSourceHungDaemon(t *testing.T) {
	t.Parallel()
	const callTimeout = 500 * time.Millisecond
	d := libvirttest.Start(t)
	drv := d.Connect(t, "") // keeps test:///default alive
	defineStart(t, drv, lvDomainXML("bad", 1, `<t:tmem xmlns:t="`+defaultTmemNamespace+`"><t:weight>-1</t:weight></t:tmem>`))
	h := startLvSource(t, d, libvirtConfig{CallTimeout: callTimeout, KeepAlive: 100 * time.Millisecond,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond})
	h.waitStatus(t, SourceConnected, 10*time.Second)

	d.Pause()
	detect := h.waitStatus(t, SourceDisconnected, 10*callTimeout)
	t.Logf("SIGSTOP noticed after %v (call timeout %v): %v", detect, callTimeout, h.src.State().Err)
	// Typically CallTimeout plus up to KeepAlive; the slack is for loaded
	// CI machines (4 race-enabled runs on 2 CPUs took 1.7s once).
	if limit := callTimeout + 100*time.Millisecond + 2*time.Second; detect > limit {
		t.Errorf("hung daemon noticed after %v, want under %v", detect, limit)
	}
	if err := h.src.State().Err; !errors.Is(err, errLibvirtTimeout) {
		t.Errorf("state error = %v, want a timeout", err)
	}
	time.Sleep(4 * callTimeout) // attempts keep timing out
	if st := h.src.State(); st.Status != SourceDisconnected || !errors.Is(st.Err, errLibvirtTimeout) {
		t.Errorf("state while paused = %v", st)
	}
	if _, ok := h.src.ByName(testDomainName); !ok {
		t.Error("the view is not kept while disconnected")
	}

	d.Resume()
	took := h.waitStatus(t, SourceConnected, 10*time.Second)
	t.Logf("recovered %v after SIGCONT", took)
	h.mustByName(t, testDomainName)
	// The reconnect re-reads all metadata; the unchanged bad one is not
	// reported again.
	for msg, want := range map[string]int{msgConnected: 1, msgLost: 1, msgReconnected: 1, msgCannot: 0, msgBadMetadata: 1} {
		if got := h.count(msg); got != want {
			t.Errorf("%q logged %d times, want %d", msg, got, want)
		}
	}
}

func TestLibvirtSourceStopsWhileDaemonHung(t *testing.T) {
	t.Parallel()
	const callTimeout = 300 * time.Millisecond
	d := libvirttest.Start(t)
	core, _ := observer.New(zapcore.InfoLevel)
	src := newLibvirtSource(libvirtConfig{URI: libvirttest.TestURI, Socket: d.Socket(), CallTimeout: callTimeout, KeepAlive: time.Hour}, zap.New(core))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	lvWaitFor(t, 10*time.Second, "connected", func() bool { return src.State().Status == SourceConnected })

	d.Pause()
	t0 := time.Now()
	cancel()
	select {
	case <-done:
		t.Logf("Run returned %v after cancel with the daemon stopped", time.Since(t0))
	case <-time.After(3*callTimeout + 2*time.Second):
		t.Fatal("Run is stuck on a hung daemon")
	}
}

// TestLibvirtSourceDaemonLate: libvirtd comes up after the daemon. The
// first success is logged as "connected", after one "cannot connect".
func TestLibvirtSourceDaemonLate(t *testing.T) {
	t.Parallel()
	d := libvirttest.Start(t)
	d.Stop()
	h := startLvSource(t, d, libvirtConfig{ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond})
	h.waitStatus(t, SourceDisconnected, 10*time.Second)
	if err := h.src.State().Err; !errors.Is(err, errLibvirtDisconnected) {
		t.Errorf("state error = %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	d.Restart()
	h.waitStatus(t, SourceConnected, 10*time.Second)
	h.mustByName(t, testDomainName)
	for msg, want := range map[string]int{msgCannot: 1, msgConnected: 1, msgReconnected: 0, msgLost: 0} {
		if got := h.count(msg); got != want {
			t.Errorf("%q logged %d times, want %d", msg, got, want)
		}
	}
}

func TestLibvirtSourceNoDriver(t *testing.T) {
	t.Parallel()
	d := libvirttest.Start(t)
	h := startLvSource(t, d, libvirtConfig{URI: "xen:///system", ReconnectMin: 20 * time.Millisecond, ReconnectMax: 50 * time.Millisecond})
	h.waitStatus(t, SourceDisconnected, 10*time.Second)
	if err := h.src.State().Err; !errors.Is(err, errLibvirtNoDriver) {
		t.Errorf("state error = %v, want no driver", err)
	}
	time.Sleep(200 * time.Millisecond)
	if got := h.count(msgCannot); got != 1 {
		t.Errorf("%q logged %d times, want 1", msgCannot, got)
	}
}

// TestLibvirtSourceNoGoroutineLeak runs a source through a hang and a
// recovery, stops it, and checks that no goroutine of the source or of
// go-libvirt outlives Run (abandoned calls included). It is not parallel so
// that other tests' goroutines do not count.
func TestLibvirtSourceNoGoroutineLeak(t *testing.T) {
	d := libvirttest.Start(t)
	src := newLibvirtSource(libvirtConfig{URI: libvirttest.TestURI, Socket: d.Socket(), CallTimeout: 200 * time.Millisecond,
		KeepAlive: 50 * time.Millisecond, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 50 * time.Millisecond}, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	status := func(st SourceStatus) func() bool { return func() bool { return src.State().Status == st } }
	lvWaitFor(t, 10*time.Second, "connected", status(SourceConnected))
	d.Pause()
	lvWaitFor(t, 5*time.Second, "disconnected", status(SourceDisconnected))
	time.Sleep(500 * time.Millisecond) // abandoned connect attempts pile up here
	d.Resume()
	lvWaitFor(t, 10*time.Second, "reconnected", status(SourceConnected))
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var stacks string
	deadline := time.Now().Add(3 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		var leaked []string
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "github.com/digitalocean/go-libvirt") || strings.Contains(g, "main.lvCall") ||
				strings.Contains(g, "main.(*libvirtSource)") || strings.Contains(g, "main.(*lvConn)") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines outlive Run:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
