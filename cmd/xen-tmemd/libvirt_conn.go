package main

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// lvConn is one connection to libvirtd with a deadline on every call.
//
// go-libvirt has no request timeouts: a call to a hung daemon (SIGSTOP,
// deadlock) blocks forever, and so does Disconnect, which sends ConnectClose
// first. lvConn runs each call in a goroutine and abandons it after the call
// timeout; it then marks the connection broken and closes the raw socket it
// kept from the dialer. Closing the socket makes go-libvirt fail every
// pending call (ErrInterrupted), close its event streams and end its
// goroutines, so abandoned calls finish soon after. A broken lvConn is never
// reused: the next attempt builds a new one, which also keeps go-libvirt's
// reconnect path (and its unsynchronised fields) out of the picture.
//
// lvConn is safe for concurrent use.
type lvConn struct {
	l       *libvirt.Libvirt
	dialer  *lvDialer
	timeout time.Duration
	// gone is go-libvirt's Disconnected channel, read once after connect.
	gone <-chan struct{}
	// dead is closed when the connection is broken or closed.
	dead chan struct{}
	// calls counts call goroutines, abandoned ones included.
	calls sync.WaitGroup

	mu    sync.Mutex // guards cause, lastOK
	cause error      // why dead was closed
	// lastOK is when a call last completed; the keepalive skips pings
	// while calls succeed anyway.
	lastOK time.Time
}

// lvDialer wraps a socket.Dialer and keeps the net.Conn it returns, so a
// hung connection can be closed from outside go-libvirt.
type lvDialer struct {
	d socket.Dialer

	mu     sync.Mutex // guards conn, closed
	conn   net.Conn
	closed bool
}

// Dial implements socket.Dialer.
func (d *lvDialer) Dial() (net.Conn, error) {
	c, err := d.d.Dial()
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed { // the connect call was abandoned while dialing
		c.Close()
		return nil, net.ErrClosed
	}
	d.conn = c
	return c, nil
}

// close closes the socket, now or as soon as Dial returns one.
func (d *lvDialer) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.conn != nil {
		d.conn.Close()
	}
}

// lvDialerFunc adapts a function to socket.Dialer.
type lvDialerFunc func() (net.Conn, error)

// Dial implements socket.Dialer.
func (f lvDialerFunc) Dial() (net.Conn, error) { return f() }

var _ socket.Dialer = (*lvDialer)(nil)
var _ socket.Dialer = lvDialerFunc(nil)

// lvConnect dials libvirtd and opens cfg.URI, all within cfg.CallTimeout.
// It returns the connection and the daemon's libvirt version.
func lvConnect(cfg *libvirtConfig) (*lvConn, uint64, error) {
	var d socket.Dialer = cfg.Dialer
	if d == nil {
		d = dialers.NewLocal(dialers.WithSocket(cfg.Socket), dialers.WithLocalTimeout(cfg.CallTimeout))
	}
	dialer := &lvDialer{d: d}
	c := &lvConn{
		l:       libvirt.NewWithDialer(dialer),
		dialer:  dialer,
		timeout: cfg.CallTimeout,
		dead:    make(chan struct{}),
	}
	uri := libvirt.ConnectURI(cfg.URI)
	version, err := lvCall(c, "connect to "+cfg.URI, func(l *libvirt.Libvirt) (uint64, error) {
		if err := l.ConnectToURI(uri); err != nil {
			return 0, err
		}
		// One round trip right away: it gives the version for the log and,
		// because it writes to the socket, orders go-libvirt's assignment
		// of its disconnected channel (made after its reader goroutine
		// started) before that reader's cleanup, for the race detector.
		return l.ConnectGetLibVersion()
	})
	if err != nil {
		c.fail(err)
		c.wait(c.timeout)
		return nil, 0, err
	}
	c.gone = c.l.Disconnected()
	return c, version, nil
}

// lvCall runs fn on c's connection with c's call timeout. op names the call
// in errors. On a timeout or a lost connection c is marked broken and closed;
// calls on a broken connection fail at once.
func lvCall[T any](c *lvConn, op string, fn func(*libvirt.Libvirt) (T, error)) (T, error) {
	return lvCallAbandon(c, op, fn, nil)
}

// lvCallAbandon is lvCall with a clean-up for a result that arrives after
// the call was abandoned: abandoned(v) runs, tracked by c.calls, when fn
// succeeds too late. Subscriptions use it to drain an event channel that
// nobody else will read.
func lvCallAbandon[T any](c *lvConn, op string, fn func(*libvirt.Libvirt) (T, error), abandoned func(T)) (T, error) {
	var zero T
	select {
	case <-c.dead:
		return zero, fmt.Errorf("libvirt %s: %w", op, c.err())
	default:
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1) // the goroutine never blocks, even abandoned
	c.calls.Add(1)
	go func() {
		defer c.calls.Done()
		v, err := fn(c.l)
		done <- result{v, err}
	}()
	abandon := func() {
		if abandoned == nil {
			return
		}
		c.calls.Add(1)
		go func() {
			defer c.calls.Done()
			if r := <-done; r.err == nil {
				abandoned(r.v)
			}
		}()
	}
	t := time.NewTimer(c.timeout)
	defer t.Stop()
	select {
	case r := <-done:
		if r.err != nil {
			err := libvirtError(r.err)
			if errors.Is(err, errLibvirtDisconnected) {
				c.fail(err)
			}
			return zero, fmt.Errorf("libvirt %s: %w", op, err)
		}
		c.mu.Lock()
		c.lastOK = time.Now()
		c.mu.Unlock()
		return r.v, nil
	case <-t.C:
		err := fmt.Errorf("libvirt %s: %w after %v", op, errLibvirtTimeout, c.timeout)
		c.fail(err)
		abandon()
		return zero, err
	case <-c.dead:
		// Another call broke the connection; this one is interrupted too.
		abandon()
		return zero, fmt.Errorf("libvirt %s: %w", op, c.err())
	}
}

// fail marks c broken with cause and closes its socket. Only the first cause
// is kept.
func (c *lvConn) fail(cause error) {
	c.mu.Lock()
	first := c.cause == nil
	if first {
		c.cause = cause
		close(c.dead)
	}
	c.mu.Unlock()
	if first {
		c.dialer.close()
	}
}

// err returns why c broke, or nil while it is healthy.
func (c *lvConn) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause
}

// idle returns how long ago a call last succeeded.
func (c *lvConn) idle(now time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return now.Sub(c.lastOK)
}

// errLvClosed is the cause of a connection closed on purpose.
var errLvClosed = fmt.Errorf("%w: connection closed", errLibvirtDisconnected)

// close ends the connection: politely (ConnectClose, bounded by the call
// timeout) when graceful and the connection is healthy, else by closing the
// socket. It then waits, at most about the call timeout, for the call
// goroutines and go-libvirt's reader to finish, and reports whether they did.
func (c *lvConn) close(graceful bool) bool {
	if graceful && c.err() == nil {
		_, _ = lvCall(c, "disconnect", func(l *libvirt.Libvirt) (struct{}, error) {
			return struct{}{}, l.Disconnect()
		})
	}
	c.fail(errLvClosed)
	return c.wait(c.timeout + time.Second)
}

// wait waits up to d for the call goroutines and go-libvirt's reader.
func (c *lvConn) wait(d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		c.calls.Wait()
		if c.gone != nil {
			<-c.gone
		}
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}
