package libvirttest

import (
	"os"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
)

// testDomainName is the one domain test:///default starts with.
const testDomainName = "test"

func TestStartServesTestDriver(t *testing.T) {
	t.Parallel()
	d := Start(t)
	l := d.Connect(t, "")
	typ, err := l.ConnectGetType()
	if err != nil || typ != "TEST" {
		t.Fatalf("ConnectGetType = %q, %v; want TEST", typ, err)
	}
	dom, err := l.DomainLookupByName(testDomainName)
	if err != nil {
		t.Fatalf("lookup %q: %v", testDomainName, err)
	}
	if dom.ID != 1 {
		t.Errorf("domain %q has id %d, want 1", testDomainName, dom.ID)
	}
}

func TestParallelDaemonsAreIndependent(t *testing.T) {
	t.Parallel()
	a, b := Start(t), Start(t)
	if a.Socket() == b.Socket() || a.PID() == b.PID() {
		t.Fatalf("daemons share socket or pid: %s/%d %s/%d", a.Socket(), a.PID(), b.Socket(), b.PID())
	}
	la, lb := a.Connect(t, ""), b.Connect(t, "")
	dom, err := la.DomainLookupByName(testDomainName)
	if err != nil {
		t.Fatal(err)
	}
	if err := la.DomainSuspend(dom); err != nil {
		t.Fatal(err)
	}
	stA := state(t, la)
	stB := state(t, lb)
	if stA != libvirt.DomainPaused || stB != libvirt.DomainRunning {
		t.Errorf("states = %v, %v; want paused on a, running on b", stA, stB)
	}
}

func state(t *testing.T, l *libvirt.Libvirt) libvirt.DomainState {
	t.Helper()
	dom, err := l.DomainLookupByName(testDomainName)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := l.DomainGetState(dom, 0)
	if err != nil {
		t.Fatal(err)
	}
	return libvirt.DomainState(st)
}

func TestKillRestart(t *testing.T) {
	t.Parallel()
	d := Start(t)
	old := d.PID()
	d.Kill()
	if d.Running() {
		t.Fatal("Running after Kill")
	}
	if _, err := os.Stat(d.Socket()); err != nil {
		t.Errorf("socket should stay behind after SIGKILL: %v", err)
	}
	start := time.Now()
	d.Restart()
	t.Logf("restart after kill took %v", time.Since(start))
	if d.PID() == 0 || d.PID() == old {
		t.Fatalf("PID after restart = %d (old %d)", d.PID(), old)
	}
	d.Connect(t, "")
	d.Stop()
	if _, err := os.Stat(d.Socket()); !os.IsNotExist(err) {
		t.Errorf("socket after clean stop: %v, want removed", err)
	}
	d.Stop() // idempotent
}

func TestPauseResume(t *testing.T) {
	t.Parallel()
	d := Start(t)
	l := d.Connect(t, "")
	d.Pause()
	errc := make(chan error, 1)
	go func() {
		_, err := l.ConnectGetLibVersion()
		errc <- err
	}()
	select {
	case err := <-errc:
		t.Fatalf("call to a paused daemon returned %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	d.Resume()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("call after resume: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("call did not complete after resume")
	}
}

func TestPausedDaemonIsStoppedAtCleanup(t *testing.T) {
	t.Parallel()
	d := Start(t)
	d.Connect(t, "")
	d.Pause() // cleanup must resume it before SIGTERM
}
