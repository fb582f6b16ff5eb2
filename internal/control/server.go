package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"go.uber.org/zap"
)

// Handler executes one decoded request. args is nil or the op's *XxxArgs.
// An error that is an *Error is sent as it is; any other becomes CodeFailed.
type Handler func(ctx context.Context, op string, args any) (any, error)

// Subscriber returns a channel of events and a function that ends the
// subscription; used by the "events" op.
type Subscriber func() (<-chan Event, func())

// Server serves the control API. Set the fields before calling Serve.
type Server struct {
	Handle    Handler
	Subscribe Subscriber
	// Authorize vets a new connection (peer credentials); nil allows all.
	Authorize func(net.Conn) error
	Log       *zap.Logger
}

// Listen creates the unix socket at path with mode 0600 in a directory of
// mode 0700, replacing a stale socket left by a crash.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("control socket %s: another daemon is serving it", path)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

// Serve accepts connections until ctx is done, then closes ln and returns
// after every connection's goroutine has exited.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	log := s.Log
	if log == nil {
		log = zap.NewNop()
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("control socket: accept: %w", err)
		}
		if s.Authorize != nil {
			if err := s.Authorize(c); err != nil {
				log.Warn("control connection refused", zap.Error(err))
				writeLine(c, Reply{V: Version, Error: &Error{Code: CodeDenied, Message: err.Error()}})
				c.Close()
				continue
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.ServeConn(ctx, c)
		}()
	}
}

// ServeConn serves one connection until the peer closes it or ctx is done.
// Tests use it over net.Pipe.
func (s *Server) ServeConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 4096), MaxLine)
	for sc.Scan() {
		req, args, err := DecodeRequest(sc.Bytes())
		if err != nil {
			if writeLine(c, Reply{V: Version, ID: req.ID, Error: &Error{Code: CodeBadRequest, Message: err.Error()}}) != nil {
				return
			}
			continue
		}
		if req.Op == OpEvents {
			s.stream(ctx, c, req.ID)
			return
		}
		res, err := s.Handle(ctx, req.Op, args)
		rep := Reply{V: Version, ID: req.ID, OK: err == nil}
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				ce = &Error{Code: CodeFailed, Message: err.Error()}
			}
			rep.Error = ce
		} else if res != nil {
			b, merr := json.Marshal(res)
			if merr != nil {
				rep.OK, rep.Error = false, &Error{Code: CodeFailed, Message: "encode result: " + merr.Error()}
			} else {
				rep.Result = b
			}
		}
		if writeLine(c, rep) != nil {
			return
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, net.ErrClosed) {
		writeLine(c, Reply{V: Version, Error: &Error{Code: CodeBadRequest, Message: err.Error()}})
	}
}

func (s *Server) stream(ctx context.Context, c net.Conn, id uint64) {
	if s.Subscribe == nil {
		writeLine(c, Reply{V: Version, ID: id, Error: &Error{Code: CodeUnavailable, Message: "no event stream"}})
		return
	}
	if writeLine(c, Reply{V: Version, ID: id, OK: true}) != nil {
		return
	}
	ch, cancel := s.Subscribe()
	defer cancel()
	// A read returns when the peer closes the connection.
	gone := make(chan struct{})
	go func() {
		var b [1]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				close(gone)
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-gone:
			return
		case ev, ok := <-ch:
			if !ok {
				return
			}
			if writeLine(c, EventLine{V: Version, Event: ev}) != nil {
				return
			}
		}
	}
}

func writeLine(c net.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = c.Write(append(b, '\n'))
	return err
}
