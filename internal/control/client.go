package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// DefaultSocket is where xen-tmemd listens unless told otherwise.
const DefaultSocket = "/run/xen-tmemd/control.sock"

// ErrNoDaemon means nothing listens on the socket.
var ErrNoDaemon = errors.New("xen-tmemd is not running")

// Client is a connection to the daemon. It is safe for concurrent use;
// calls are serialised.
type Client struct {
	mu sync.Mutex // guards c, r, id
	c  net.Conn
	r  *bufio.Reader
	id uint64
}

// Dial connects to the daemon's socket.
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, &dialError{path: path, err: err}
	}
	return NewClient(c), nil
}

// NewClient wraps an established connection (tests use net.Pipe).
func NewClient(c net.Conn) *Client {
	return &Client{c: c, r: bufio.NewReaderSize(c, 64<<10)}
}

// Close closes the connection.
func (cl *Client) Close() error { return cl.c.Close() }

// Call issues op with args and decodes the result into result (which may be
// nil). A daemon-side failure is returned as *Error.
func (cl *Client) Call(ctx context.Context, op string, args, result any) error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.id++
	line, err := EncodeRequest(cl.id, op, args)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		cl.c.SetDeadline(dl)
		defer cl.c.SetDeadline(time.Time{})
	}
	if _, err := cl.c.Write(line); err != nil {
		// A server that refused the connection has said why before
		// closing it: prefer its answer to the broken pipe.
		if rep, rerr := cl.readReply(); rerr == nil && !rep.OK && rep.Error != nil {
			return rep.Error
		}
		return fmt.Errorf("control: send %s: %w", op, err)
	}
	rep, err := cl.readReply()
	if err != nil {
		return fmt.Errorf("control: %s: %w", op, err)
	}
	if !rep.OK && rep.ID == 0 && rep.Error != nil {
		// The server refused the connection (e.g. denied) before reading
		// the request.
		return rep.Error
	}
	if rep.ID != cl.id {
		return fmt.Errorf("control: %s: reply id %d, want %d", op, rep.ID, cl.id)
	}
	if !rep.OK {
		if rep.Error == nil {
			return &Error{Code: CodeFailed, Message: "no error detail"}
		}
		return rep.Error
	}
	if result != nil && len(rep.Result) > 0 {
		if err := json.Unmarshal(rep.Result, result); err != nil {
			return fmt.Errorf("control: %s: decode result: %w", op, err)
		}
	}
	return nil
}

func (cl *Client) readReply() (*Reply, error) {
	line, err := cl.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		buf := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) && len(buf) < MaxLine {
			line, err = cl.r.ReadSlice('\n')
			buf = append(buf, line...)
		}
		line = buf
	}
	if err != nil {
		return nil, err
	}
	var rep Reply
	if err := json.Unmarshal(line, &rep); err != nil {
		return nil, fmt.Errorf("bad reply: %w", err)
	}
	return &rep, nil
}

// Events subscribes to the event stream and calls fn for each event until
// ctx is done, fn returns false, or the daemon goes away. The Client is
// consumed: close it afterwards.
func (cl *Client) Events(ctx context.Context, fn func(Event) bool) error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.id++
	line, _ := EncodeRequest(cl.id, OpEvents, nil)
	if _, err := cl.c.Write(line); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { cl.c.Close() })
	defer stop()
	rep, err := cl.readReply()
	if err != nil {
		return err
	}
	if !rep.OK {
		return rep.Error
	}
	for {
		line, err := cl.r.ReadBytes('\n')
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		var ev EventLine
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("bad event: %w", err)
		}
		if !fn(ev.Event) {
			return nil
		}
	}
}

// dialError is a failed Dial: it matches ErrNoDaemon and the cause (so a
// caller can tell os.ErrPermission from "not running").
type dialError struct {
	path string
	err  error
}

func (e *dialError) Error() string {
	return fmt.Sprintf("%v: %s: %v (start it with 'systemctl start xen-tmemd', or 'make run' for the simulator)", ErrNoDaemon, e.path, e.err)
}

func (e *dialError) Unwrap() []error { return []error{ErrNoDaemon, e.err} }
