package cowdtest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Extent is one base:allocation extent of a BLOCK_STATUS reply.
type Extent struct {
	Length uint32
	Flags  uint32 // bit 0 hole, bit 1 zero
}

type call struct {
	typ     uint16
	off     uint64
	dst     []byte
	extents []Extent
	err     error
	done    chan struct{}
}

// ErrClosed is returned for requests on a connection that went away.
var ErrClosed = errors.New("cowdtest: connection closed")

// Do sends one raw request and waits for its reply. dst receives READ
// data. It is exported so tests can send requests a polite client would
// not.
func (c *Client) Do(typ, flags uint16, off uint64, length uint32, payload, dst []byte) ([]Extent, error) {
	cl := &call{typ: typ, off: off, dst: dst, done: make(chan struct{})}
	be := binary.BigEndian
	c.wmu.Lock()
	c.cookie++
	cookie := c.cookie
	c.mu.Lock()
	if c.readErr != nil {
		c.mu.Unlock()
		c.wmu.Unlock()
		return nil, c.readErr
	}
	c.pending[cookie] = cl
	c.mu.Unlock()
	var h [28]byte
	be.PutUint32(h[0:], requestMagic)
	be.PutUint16(h[4:], flags)
	be.PutUint16(h[6:], typ)
	be.PutUint64(h[8:], cookie)
	be.PutUint64(h[16:], off)
	be.PutUint32(h[24:], length)
	c.w.Write(h[:])
	c.w.Write(payload)
	err := c.w.Flush()
	c.wmu.Unlock()
	if err != nil {
		c.fail(err)
	}
	<-cl.done
	return cl.extents, cl.err
}

// Read reads len(p) bytes at off.
func (c *Client) Read(p []byte, off int64) error {
	_, err := c.Do(CmdRead, 0, uint64(off), uint32(len(p)), nil, p)
	return err
}

// Write writes p at off, with FUA if asked.
func (c *Client) Write(p []byte, off int64, fua bool) error {
	var f uint16
	if fua {
		f = FlagFUA
	}
	_, err := c.Do(CmdWrite, f, uint64(off), uint32(len(p)), p, nil)
	return err
}

// Flush sends FLUSH.
func (c *Client) Flush() error {
	_, err := c.Do(CmdFlush, 0, 0, 0, nil, nil)
	return err
}

// Trim sends TRIM.
func (c *Client) Trim(off, n int64) error {
	_, err := c.Do(CmdTrim, 0, uint64(off), uint32(n), nil, nil)
	return err
}

// WriteZeroes sends WRITE_ZEROES with the given flags.
func (c *Client) WriteZeroes(off, n int64, flags uint16) error {
	_, err := c.Do(CmdWriteZeroes, flags, uint64(off), uint32(n), nil, nil)
	return err
}

// BlockStatus queries base:allocation.
func (c *Client) BlockStatus(off, n int64, flags uint16) ([]Extent, error) {
	return c.Do(CmdBlockStatus, flags, uint64(off), uint32(n), nil, nil)
}

// Close sends DISC and closes the connection.
func (c *Client) Close() error {
	c.wmu.Lock()
	var h [28]byte
	binary.BigEndian.PutUint32(h[0:], requestMagic)
	binary.BigEndian.PutUint16(h[6:], CmdDisc)
	c.w.Write(h[:])
	c.w.Flush()
	c.wmu.Unlock()
	return c.nc.Close()
}

// Abort drops the connection without DISC, as a crashing client would.
func (c *Client) Abort() error { return c.nc.Close() }

func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.readErr == nil {
		c.readErr = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	for k, cl := range c.pending {
		cl.err = c.readErr
		close(cl.done)
		delete(c.pending, k)
	}
}

func (c *Client) take(cookie uint64, done bool) (*call, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := c.pending[cookie]
	if cl == nil {
		return nil, fmt.Errorf("reply for unknown cookie %d", cookie)
	}
	if done {
		delete(c.pending, cookie)
	}
	return cl, nil
}

func (c *Client) readLoop() {
	err := c.readReplies()
	c.fail(err)
}

func (c *Client) readReplies() error {
	be := binary.BigEndian
	var m [4]byte
	for {
		if _, err := io.ReadFull(c.r, m[:]); err != nil {
			return err
		}
		switch be.Uint32(m[:]) {
		case simpleMagic:
			var h [12]byte
			if _, err := io.ReadFull(c.r, h[:]); err != nil {
				return err
			}
			cl, err := c.take(be.Uint64(h[4:]), true)
			if err != nil {
				return err
			}
			if e := be.Uint32(h[0:]); e != 0 {
				cl.err = &Error{Errno: e}
			} else if cl.typ == CmdRead {
				if _, err := io.ReadFull(c.r, cl.dst); err != nil {
					return err
				}
			}
			close(cl.done)
		case structuredMagic:
			if err := c.readChunk(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("bad reply magic % x", m)
		}
	}
}

func (c *Client) readChunk() error {
	be := binary.BigEndian
	var h [16]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		return err
	}
	flags, typ, n := be.Uint16(h[0:]), be.Uint16(h[2:]), be.Uint32(h[12:])
	done := flags&1 != 0
	cl, err := c.take(be.Uint64(h[4:]), done)
	if err != nil {
		return err
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(c.r, payload); err != nil {
		return err
	}
	switch {
	case typ == 1 && n >= 8: // OFFSET_DATA
		rel := be.Uint64(payload) - cl.off
		if rel+uint64(n-8) > uint64(len(cl.dst)) {
			return fmt.Errorf("OFFSET_DATA outside the request")
		}
		copy(cl.dst[rel:], payload[8:])
	case typ == 2 && n == 12: // OFFSET_HOLE
		rel := be.Uint64(payload) - cl.off
		clear(cl.dst[rel : rel+uint64(be.Uint32(payload[8:]))])
	case typ == 5 && n >= 4: // BLOCK_STATUS
		for p := payload[4:]; len(p) >= 8; p = p[8:] {
			cl.extents = append(cl.extents, Extent{Length: be.Uint32(p), Flags: be.Uint32(p[4:])})
		}
	case typ&(1<<15) != 0 && n >= 6: // ERROR, ERROR_OFFSET
		ml := int(be.Uint16(payload[4:]))
		msg := ""
		if 6+ml <= len(payload) {
			msg = string(payload[6 : 6+ml])
		}
		cl.err = &Error{Errno: be.Uint32(payload), Msg: msg}
	case typ == 0: // NONE
	default:
		return fmt.Errorf("bad chunk type %d length %d", typ, n)
	}
	if done {
		close(cl.done)
	}
	return nil
}
