package cowdtest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// Wire constants, written out independently of package nbd on purpose:
// this client checks the server, it must not share its mistakes.
const (
	nbdMagic        = 0x4e42444d41474943
	optMagic        = 0x49484156454f5054
	optReplyMagic   = 0x0003e889045565a9
	requestMagic    = 0x25609513
	simpleMagic     = 0x67446698
	structuredMagic = 0x668e33ef

	optExportName  = 1
	optAbort       = 2
	optList        = 3
	optInfo        = 6
	optGo          = 7
	optStructured  = 8
	optSetMetaCtx  = 10
	repAck         = 1
	repServer      = 2
	repInfo        = 3
	repMetaContext = 4

	CmdRead        = 0
	CmdWrite       = 1
	CmdDisc        = 2
	CmdFlush       = 3
	CmdTrim        = 4
	CmdCache       = 5
	CmdWriteZeroes = 6
	CmdBlockStatus = 7

	FlagFUA      = 1 << 0
	FlagNoHole   = 1 << 1
	FlagDF       = 1 << 2
	FlagReqOne   = 1 << 3
	FlagFastZero = 1 << 4

	TFCanMultiConn = 1 << 8
)

// DialOptions selects what the client negotiates.
type DialOptions struct {
	Export        string
	Structured    bool // STRUCTURED_REPLY
	BaseAlloc     bool // SET_META_CONTEXT base:allocation (implies Structured)
	BlockSize     bool // ask for NBD_INFO_BLOCK_SIZE in GO
	UseExportName bool // legacy EXPORT_NAME instead of GO
}

// Client is a minimal pipelining NBD client for tests. Its methods are
// safe for concurrent use; replies are matched by cookie.
type Client struct {
	nc     net.Conn
	r      *bufio.Reader
	Size   int64
	Flags  uint16
	Sizes  [3]uint32 // min, preferred, max from NBD_INFO_BLOCK_SIZE
	opts   DialOptions
	metaID uint32

	wmu    sync.Mutex // guards w and cookie
	w      *bufio.Writer
	cookie uint64

	mu      sync.Mutex // guards pending and readErr
	pending map[uint64]*call
	readErr error
}

// Error is an error reply from the server.
type Error struct {
	Errno uint32
	Msg   string
}

func (e *Error) Error() string { return fmt.Sprintf("nbd error %d: %s", e.Errno, e.Msg) }

// ErrnoOf returns the NBD error code of err, or 0.
func ErrnoOf(err error) uint32 {
	var e *Error
	if errors.As(err, &e) {
		return e.Errno
	}
	return 0
}

// Dial connects to addr ("unix" or "tcp" network) and negotiates.
func Dial(network, addr string, opts *DialOptions) (*Client, error) {
	if opts == nil {
		opts = &DialOptions{}
	}
	nc, err := net.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	c := &Client{nc: nc, r: bufio.NewReader(nc), w: bufio.NewWriter(nc), opts: *opts, pending: map[uint64]*call{}}
	if err := c.handshake(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	go c.readLoop()
	return c, nil
}

func (c *Client) handshake() error {
	var g [18]byte
	if _, err := io.ReadFull(c.r, g[:]); err != nil {
		return err
	}
	be := binary.BigEndian
	if be.Uint64(g[0:]) != nbdMagic || be.Uint64(g[8:]) != optMagic {
		return fmt.Errorf("bad greeting % x", g)
	}
	if err := c.send(be.AppendUint32(nil, 3)); err != nil { // fixed newstyle, no zeroes
		return err
	}
	if c.opts.Structured || c.opts.BaseAlloc {
		if _, err := c.option(optStructured, nil); err != nil {
			return err
		}
	}
	if c.opts.BaseAlloc {
		d := be.AppendUint32(nil, uint32(len(c.opts.Export)))
		d = append(d, c.opts.Export...)
		d = be.AppendUint32(d, 1)
		d = be.AppendUint32(d, uint32(len("base:allocation")))
		d = append(d, "base:allocation"...)
		reps, err := c.option(optSetMetaCtx, d)
		if err != nil {
			return err
		}
		for _, r := range reps {
			if r.typ == repMetaContext && len(r.data) >= 4 && string(r.data[4:]) == "base:allocation" {
				c.metaID = be.Uint32(r.data)
			}
		}
		if c.metaID == 0 {
			return errors.New("server did not select base:allocation")
		}
	}
	if c.opts.UseExportName {
		if err := c.send(optHeader(optExportName, []byte(c.opts.Export))); err != nil {
			return err
		}
		var b [10]byte
		if _, err := io.ReadFull(c.r, b[:]); err != nil {
			return err
		}
		c.Size, c.Flags = int64(be.Uint64(b[0:])), be.Uint16(b[8:])
		return nil
	}
	d := be.AppendUint32(nil, uint32(len(c.opts.Export)))
	d = append(d, c.opts.Export...)
	if c.opts.BlockSize {
		d = be.AppendUint16(d, 1)
		d = be.AppendUint16(d, 3)
	} else {
		d = be.AppendUint16(d, 0)
	}
	reps, err := c.option(optGo, d)
	if err != nil {
		return err
	}
	for _, r := range reps {
		if r.typ != repInfo || len(r.data) < 2 {
			continue
		}
		switch be.Uint16(r.data) {
		case 0:
			c.Size, c.Flags = int64(be.Uint64(r.data[2:])), be.Uint16(r.data[10:])
		case 3:
			c.Sizes = [3]uint32{be.Uint32(r.data[2:]), be.Uint32(r.data[6:]), be.Uint32(r.data[10:])}
		}
	}
	return nil
}

type optReply struct {
	typ  uint32
	data []byte
}

func optHeader(opt uint32, data []byte) []byte {
	be := binary.BigEndian
	b := be.AppendUint64(nil, optMagic)
	b = be.AppendUint32(b, opt)
	b = be.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// option sends an option and collects replies up to the final one; an
// error reply becomes an *Error with the reply type as Errno.
func (c *Client) option(opt uint32, data []byte) ([]optReply, error) {
	if err := c.send(optHeader(opt, data)); err != nil {
		return nil, err
	}
	var out []optReply
	for {
		var h [20]byte
		if _, err := io.ReadFull(c.r, h[:]); err != nil {
			return nil, err
		}
		be := binary.BigEndian
		if be.Uint64(h[0:]) != optReplyMagic || be.Uint32(h[8:]) != opt {
			return nil, fmt.Errorf("bad option reply % x", h)
		}
		r := optReply{typ: be.Uint32(h[12:]), data: make([]byte, be.Uint32(h[16:]))}
		if _, err := io.ReadFull(c.r, r.data); err != nil {
			return nil, err
		}
		switch {
		case r.typ&(1<<31) != 0:
			return nil, &Error{Errno: r.typ, Msg: string(r.data)}
		case r.typ == repAck:
			return out, nil
		}
		out = append(out, r)
	}
}

func (c *Client) send(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.w.Write(b)
	return c.w.Flush()
}

// List returns the export names a server offers.
func List(network, addr string) ([]string, error) {
	nc, err := net.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	c := &Client{nc: nc, r: bufio.NewReader(nc), w: bufio.NewWriter(nc)}
	var g [18]byte
	if _, err := io.ReadFull(c.r, g[:]); err != nil {
		return nil, err
	}
	if err := c.send(binary.BigEndian.AppendUint32(nil, 3)); err != nil {
		return nil, err
	}
	reps, err := c.option(optList, nil)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, r := range reps {
		if r.typ == repServer && len(r.data) >= 4 {
			n := binary.BigEndian.Uint32(r.data)
			names = append(names, string(r.data[4:4+n]))
		}
	}
	c.option(optAbort, nil)
	return names, nil
}
