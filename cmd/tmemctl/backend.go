package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/internal/control"
	"github.com/xentmem/xentmem/xenctl"
)

// backend carries the operations of the control API (docs/control-api.md):
// op names, argument types and result shapes are the daemon's, so both
// implementations give the commands the same answers and the same errors
// (a *control.Error with the daemon's codes).
//
//   - the daemon backend is a *control.Client on xen-tmemd's socket;
//   - the direct backend (direct.go) runs the same ops in this process
//     on a xenctl.Client, after encoding and decoding them exactly as the
//     daemon's server does.
type backend interface {
	// Call issues op with args and decodes the result into result (nil:
	// ignore it).
	Call(ctx context.Context, op string, args, result any) error
	// Daemon reports whether this is xen-tmemd (tmem-reserve needs it).
	Daemon() bool
	Close() error
}

var (
	_ backend = (*daemonBackend)(nil)
	_ backend = (*directBackend)(nil)
)

// daemonBackend is xen-tmemd's control socket.
type daemonBackend struct {
	*control.Client
}

func (daemonBackend) Daemon() bool { return true }

// callTimeout bounds a call to the daemon that has no deadline of its own,
// so that a hung daemon does not hang tmemctl. Save and restore copy whole
// domains and have none.
const callTimeout = 2 * time.Minute

func (d daemonBackend) Call(ctx context.Context, op string, args, result any) error {
	if _, ok := ctx.Deadline(); !ok && op != control.OpSave && op != control.OpRestore {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, callTimeout)
		defer cancel()
	}
	return d.Client.Call(ctx, op, args, result)
}

// dialTimeout bounds connecting to the daemon's socket.
const dialTimeout = 5 * time.Second

// openBackend picks the backend: --direct means Xen, an explicit --socket
// means the daemon, and otherwise the daemon when its socket exists (a
// stale socket falls back to Xen) and Xen when it does not.
func openBackend(ctx context.Context, e *env) (backend, error) {
	if e.global.direct {
		be, err := openDirect(e)
		if err != nil && errors.Is(err, hypercall.ErrPermission) {
			return nil, &reachError{Code: exitDenied, Msg: err.Error(), Err: err}
		}
		return be, err
	}
	path, explicit := e.global.socket, e.global.socket != ""
	if !explicit {
		path = e.defaultSocket
		if path == "" {
			path = control.DefaultSocket
		}
	}
	if explicit {
		return dialDaemon(ctx, path)
	}
	if _, err := os.Stat(path); err != nil {
		be, derr := openDirect(e)
		if derr != nil {
			return nil, noBackend(path, derr)
		}
		return be, nil
	}
	be, err := dialDaemon(ctx, path)
	if err == nil {
		return be, nil
	}
	var re *reachError
	if errors.As(err, &re) && re.Code == exitUnreachable {
		// A socket nobody serves: the daemon crashed. Try Xen.
		if dbe, derr := openDirect(e); derr == nil {
			return dbe, nil
		}
	}
	return nil, err
}

// noBackend explains a failed direct open when no daemon socket exists.
func noBackend(socket string, err error) error {
	switch {
	case errors.Is(err, hypercall.ErrPermission):
		return &reachError{Code: exitDenied, Msg: err.Error(), Err: err}
	case errors.Is(err, hypercall.ErrNoDevice), errors.Is(err, hypercall.ErrNotSupported):
		return &reachError{Code: exitUnreachable, Err: err,
			Msg: fmt.Sprintf("no Xen here and xen-tmemd is not running (in simulated mode start it: make run; tmemctl looks for its socket at %s, see --socket)", socket)}
	case errors.Is(err, xenctl.ErrNoXen):
		return &reachError{Code: exitUnreachable, Err: err, Msg: err.Error() + " (and xen-tmemd is not running)"}
	}
	return err
}

// dialDaemon connects to xen-tmemd and tells "not running" from "not
// allowed".
func dialDaemon(ctx context.Context, path string) (backend, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		switch {
		case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
			return nil, &reachError{Code: exitDenied, Err: err,
				Msg: fmt.Sprintf("permission denied on xen-tmemd's socket %s: run as root", path)}
		case errors.Is(err, syscall.ENOENT):
			return nil, &reachError{Code: exitUnreachable, Err: control.ErrNoDaemon,
				Msg: fmt.Sprintf("xen-tmemd is not running: no socket %s (start it with 'systemctl start xen-tmemd', or 'make run' for the simulator)", path)}
		}
		return nil, &reachError{Code: exitUnreachable, Err: control.ErrNoDaemon,
			Msg: fmt.Sprintf("xen-tmemd is not running: %s: %v (start it with 'systemctl start xen-tmemd', or 'make run' for the simulator)", path, errors.Unwrap(err))}
	}
	return daemonBackend{control.NewClient(c)}, nil
}
