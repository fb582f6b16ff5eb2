package control

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type state struct{ frozen map[string]bool }

func (s *state) handle(ctx context.Context, op string, args any) (any, error) {
	switch op {
	case OpStatus:
		return map[string]int{"domains": len(s.frozen)}, nil
	case OpFreeze:
		a := args.(*DomainArgs)
		if _, ok := s.frozen[a.Domain]; !ok {
			return nil, &Error{Code: CodeNoDomain, Message: "no domain " + a.Domain}
		}
		s.frozen[a.Domain] = true
		return nil, nil
	}
	return nil, errors.New("not implemented here")
}

func pipeClient(t *testing.T, srv *Server) *Client {
	t.Helper()
	a, b := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.ServeConn(ctx, b); close(done) }()
	t.Cleanup(func() { cancel(); a.Close(); <-done })
	return NewClient(a)
}

func TestServerOverPipe(t *testing.T) {
	st := &state{frozen: map[string]bool{"web1": false}}
	cl := pipeClient(t, &Server{Handle: st.handle})
	ctx := context.Background()
	var status map[string]int
	if err := cl.Call(ctx, OpStatus, nil, &status); err != nil || status["domains"] != 1 {
		t.Fatalf("status = %v, %v", status, err)
	}
	if err := cl.Call(ctx, OpFreeze, &DomainArgs{Domain: "web1"}, nil); err != nil || !st.frozen["web1"] {
		t.Fatalf("freeze: %v, frozen %v", err, st.frozen)
	}
	var ce *Error
	if err := cl.Call(ctx, OpFreeze, &DomainArgs{Domain: "nope"}, nil); !errors.As(err, &ce) || ce.Code != CodeNoDomain {
		t.Errorf("unknown domain: %v", err)
	}
	if err := cl.Call(ctx, OpThaw, &DomainArgs{Domain: "web1"}, nil); !errors.As(err, &ce) || ce.Code != CodeFailed {
		t.Errorf("handler error: %v", err)
	}
	// A malformed request changes nothing and the connection stays usable.
	if err := cl.Call(ctx, OpFreeze, &DomainArgs{}, nil); !errors.As(err, &ce) || ce.Code != CodeBadRequest {
		t.Errorf("bad args: %v", err)
	}
	if _, err := cl.c.Write([]byte("garbage\n")); err != nil {
		t.Fatal(err)
	}
	if rep, err := cl.readReply(); err != nil || rep.OK || rep.Error.Code != CodeBadRequest {
		t.Errorf("garbage: %+v %v", rep, err)
	}
	if err := cl.Call(ctx, OpStatus, nil, nil); err != nil {
		t.Errorf("after garbage: %v", err)
	}
}

func TestEvents(t *testing.T) {
	ch := make(chan Event, 3)
	ended := make(chan struct{})
	srv := &Server{
		Handle:    func(context.Context, string, any) (any, error) { return nil, nil },
		Subscribe: func() (<-chan Event, func()) { return ch, func() { close(ended) } },
	}
	cl := pipeClient(t, srv)
	ch <- Event{Kind: "action", Message: "flush 1024 KiB"}
	ch <- Event{Kind: "domain", Domain: "web1", Message: "started"}
	var got []Event
	err := cl.Events(context.Background(), func(e Event) bool {
		got = append(got, e)
		return len(got) < 2
	})
	if err != nil || len(got) != 2 || got[1].Domain != "web1" {
		t.Fatalf("events %+v, %v", got, err)
	}
	cl.Close()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("subscription not ended after the client left")
	}
}

func TestListenServe(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run", "ctl.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v", fi.Mode(), err)
	}
	if _, err := Listen(path); err == nil {
		t.Error("second Listen on a live socket: want an error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &Server{Handle: func(context.Context, string, any) (any, error) { return "pong", nil }, Authorize: RootOnly(os.Getuid())}
	done := make(chan error)
	go func() { done <- srv.Serve(ctx, ln) }()
	cl, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := cl.Call(ctx, OpStatus, nil, &s); err != nil || s != "pong" {
		t.Errorf("call: %q %v", s, err)
	}
	cl.Close()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	// A stale socket left by a crash is replaced.
	ln2, err := Listen(path)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	ln2.Close()
	if _, err := Dial(context.Background(), filepath.Join(dir, "absent.sock")); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("Dial absent: %v", err)
	}
}

// A connection the server turns away gets the denied error, not a
// confusing id mismatch.
func TestDeniedConnection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := &Server{Handle: func(context.Context, string, any) (any, error) { return nil, nil },
		Authorize: func(net.Conn) error { return errors.New("peer uid 1000 is not root") }}
	go srv.Serve(ctx, ln)
	cl, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var ce *Error
	if err := cl.Call(ctx, OpStatus, nil, nil); !errors.As(err, &ce) || ce.Code != CodeDenied {
		t.Errorf("err = %v, want a denied error", err)
	}
}
