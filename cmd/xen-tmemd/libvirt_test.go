package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	golibvirttest "github.com/digitalocean/go-libvirt/libvirttest"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

func TestLibvirtError(t *testing.T) {
	sentinels := []error{errLibvirtNoDomain, errLibvirtNoMetadata, errLibvirtNoSupport, errLibvirtInvalid,
		errLibvirtNoDriver, errLibvirtDisconnected, errLibvirtTimeout}
	dialRefused := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name string
		in   error
		want error  // the one sentinel it must match, nil for none
		also error  // another error it must still match
		code uint32 // libvirt code errors.As must find, 0 for none
		msg  string // substring of Error()
	}{
		{name: "no domain", in: libvirt.Error{Code: 42, Message: "Domain not found"},
			want: errLibvirtNoDomain, code: 42, msg: "Domain not found (ErrNoDomain)"},
		{name: "wrapped no metadata", in: fmt.Errorf("get: %w", libvirt.Error{Code: 80, Message: "metadata not found"}),
			want: errLibvirtNoMetadata, code: 80, msg: "get: metadata not found (ErrNoDomainMetadata)"},
		{name: "no support", in: libvirt.Error{Code: 3, Message: "this function is not supported"},
			want: errLibvirtNoSupport, code: 3},
		{name: "operation unsupported", in: libvirt.Error{Code: 84, Message: "x"}, want: errLibvirtNoSupport, code: 84},
		{name: "unknown procedure", in: libvirt.ErrUnsupported, want: errLibvirtNoSupport, also: libvirt.ErrUnsupported},
		{name: "operation invalid", in: libvirt.Error{Code: 55, Message: "domain is not running"},
			want: errLibvirtInvalid, code: 55},
		{name: "no driver", in: libvirt.Error{Code: 5, Message: "no connection driver available for xen:///system"},
			want: errLibvirtNoDriver, code: 5, msg: "libvirt-daemon-driver-xen"},
		{name: "interrupted", in: libvirt.ErrInterrupted, want: errLibvirtDisconnected, also: libvirt.ErrInterrupted},
		{name: "call after drop", in: syscall.EINVAL, want: errLibvirtDisconnected, also: syscall.EINVAL},
		{name: "refused", in: dialRefused, want: errLibvirtDisconnected, also: syscall.ECONNREFUSED, msg: "is libvirtd running?"},
		{name: "other code", in: libvirt.Error{Code: 1, Message: "internal error"}, code: 1, msg: "internal error (ErrInternalError)"},
		{name: "other error", in: errors.New("boom"), msg: "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fmt.Errorf("libvirt op: %w", libvirtError(tt.in))
			for _, s := range sentinels {
				if got := errors.Is(err, s); got != (s == tt.want) {
					t.Errorf("errors.Is(err, %q) = %v", s, got)
				}
			}
			if tt.also != nil && !errors.Is(err, tt.also) {
				t.Errorf("errors.Is(err, %v) = false", tt.also)
			}
			var le libvirt.Error
			if got := errors.As(err, &le); got != (tt.code != 0) || got && le.Code != tt.code {
				t.Errorf("errors.As libvirt.Error = %v, code %d; want code %d", got, le.Code, tt.code)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Error() = %q, want it to contain %q", err.Error(), tt.msg)
			}
		})
	}
	if libvirtError(nil) != nil {
		t.Error("libvirtError(nil) != nil")
	}
	once := libvirtError(libvirt.ErrInterrupted)
	if twice := libvirtError(once); twice != once {
		t.Errorf("libvirtError is not idempotent: %v", twice)
	}
}

func TestLibvirtConfigDefaults(t *testing.T) {
	got := libvirtConfig{ReconnectMin: time.Minute, ReconnectMax: time.Second}.withDefaults()
	want := libvirtConfig{
		URI: "xen:///system", Socket: "/run/libvirt/libvirt-sock", CallTimeout: 5 * time.Second,
		ReconnectMin: time.Minute, ReconnectMax: time.Minute, Namespace: "https://xentmem.dev/xmlns/tmem/1",
		KeepAlive: 2500 * time.Millisecond, EventBuffer: 256,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestLvUUID(t *testing.T) {
	u := libvirt.UUID{0x66, 0x95, 0xeb, 0x01, 0xf6, 0xa4, 0x83, 0x04, 0x79, 0xaa, 0x97, 0xf2, 0x50, 0x2e, 0x19, 0x3f}
	if got, want := lvUUID(u), "6695eb01-f6a4-8304-79aa-97f2502e193f"; got != want {
		t.Errorf("lvUUID = %s, want %s", got, want)
	}
}

func TestNilLibvirtSource(t *testing.T) {
	var s *libvirtSource
	if s.State().Status != SourceDisabled || s.Domains() != nil || s.Events() != nil || s.Dropped() != 0 {
		t.Error("nil source is not a disabled, empty source")
	}
	if _, ok := s.ByName("x"); ok {
		t.Error("nil source found a domain")
	}
	if got := (SourceState{Status: SourceDisconnected, Err: errLibvirtTimeout}).String(); got != "disconnected: call timed out" {
		t.Errorf("SourceState.String() = %q", got)
	}
}

// TestReportBadMetaOnce: bad metadata is logged once per domain and
// content, and again when the content changes.
func TestReportBadMetaOnce(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	s := newLibvirtSource(libvirtConfig{}, zap.New(core))
	a := &lvItem{dom: libvirt.Domain{Name: "a"}, uuid: "u-a"}
	b := &lvItem{dom: libvirt.Domain{Name: "b"}, uuid: "u-b"}
	for range 3 {
		s.reportBadMeta(a, "<tmem><weight>x</weight></tmem>", errTmemMetadata)
		s.reportBadMeta(b, "<tmem><weight>x</weight></tmem>", errTmemMetadata)
	}
	s.reportBadMeta(a, "<tmem><weight>y</weight></tmem>", errTmemMetadata)
	if n := logs.FilterMessage("ignoring tmem metadata of domain").Len(); n != 3 {
		t.Errorf("logged %d times, want 3 (a, b, a changed)", n)
	}
}

// TestLibvirtSourceCallTimeoutMock uses go-libvirt's mock server, which
// answers the connection handshake but not the event subscription: the
// call must time out, the connection be dropped and the state say why,
// with one log line however many attempts fail.
func TestLibvirtSourceCallTimeoutMock(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core()))
	s := newLibvirtSource(libvirtConfig{
		URI:         "test:///default",
		CallTimeout: 200 * time.Millisecond,
		// A fresh mock per connection: one mock is not safe to redial.
		Dialer:       lvDialerFunc(func() (net.Conn, error) { return golibvirttest.New().Dial() }),
		ReconnectMin: 20 * time.Millisecond,
		ReconnectMax: 40 * time.Millisecond,
	}, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	lvWaitFor(t, 5*time.Second, "disconnected", func() bool { return s.State().Status == SourceDisconnected })
	if err := s.State().Err; !errors.Is(err, errLibvirtTimeout) {
		t.Errorf("state error = %v, want a timeout", err)
	}
	time.Sleep(600 * time.Millisecond) // a few more failed attempts
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, open := <-s.Events(); open {
		t.Error("Events not closed after Run returned")
	}
	if n := logs.FilterMessage("cannot connect to libvirt; retrying").Len(); n != 1 {
		t.Errorf("logged the failure %d times, want once", n)
	}
	if s.State().Status != SourceDisabled {
		t.Errorf("state after Run = %v", s.State())
	}
	if err := s.Run(context.Background()); !errors.Is(err, errLibvirtRunTwice) {
		t.Errorf("second Run = %v", err)
	}
}

// lvWaitFor polls cond until it holds or timeout passes.
func lvWaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

// TestLvCallDeadline checks the call wrapper without a daemon: errors are
// classified, a libvirt error leaves the connection usable, and a call that
// outlives the timeout breaks the connection, fails later calls at once,
// and has its late result handed to the abandon hook.
func TestLvCallDeadline(t *testing.T) {
	c := &lvConn{dialer: &lvDialer{}, timeout: 50 * time.Millisecond, dead: make(chan struct{})}

	_, err := lvCall(c, "lookup", func(*libvirt.Libvirt) (int, error) {
		return 0, libvirt.Error{Code: uint32(libvirt.ErrNoDomain), Message: "Domain not found"}
	})
	if !errors.Is(err, errLibvirtNoDomain) || c.err() != nil {
		t.Fatalf("lookup: %v (connection: %v)", err, c.err())
	}
	if v, err := lvCall(c, "ok", func(*libvirt.Libvirt) (int, error) { return 7, nil }); v != 7 || err != nil {
		t.Fatalf("ok = %d, %v", v, err)
	}

	release := make(chan struct{})
	late := make(chan int, 1)
	start := time.Now()
	_, err = lvCallAbandon(c, "hang", func(*libvirt.Libvirt) (int, error) {
		<-release
		return 42, nil
	}, func(v int) { late <- v })
	if !errors.Is(err, errLibvirtTimeout) || !errors.Is(c.err(), errLibvirtTimeout) {
		t.Fatalf("hang: %v (connection: %v)", err, c.err())
	}
	if d := time.Since(start); d < c.timeout || d > c.timeout+time.Second {
		t.Errorf("timed out after %v, timeout %v", d, c.timeout)
	}
	called := false
	if _, err := lvCall(c, "after", func(*libvirt.Libvirt) (int, error) { called = true; return 0, nil }); !errors.Is(err, errLibvirtTimeout) || called {
		t.Errorf("call on a broken connection: %v (ran: %v)", err, called)
	}
	if c.wait(10 * time.Millisecond) {
		t.Error("wait returned before the hung call finished")
	}
	close(release)
	if v := <-late; v != 42 {
		t.Errorf("abandoned result = %d", v)
	}
	if !c.wait(time.Second) {
		t.Error("call goroutines did not finish")
	}

	d := &lvConn{dialer: &lvDialer{}, timeout: time.Second, dead: make(chan struct{})}
	if _, err := lvCall(d, "drop", func(*libvirt.Libvirt) (int, error) { return 0, libvirt.ErrInterrupted }); !errors.Is(err, errLibvirtDisconnected) ||
		!errors.Is(d.err(), libvirt.ErrInterrupted) {
		t.Errorf("drop: %v (connection: %v)", err, d.err())
	}
}
