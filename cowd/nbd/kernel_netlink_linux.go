//go:build linux

package nbd

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Generic netlink interface of the kernel's nbd driver, as in Linux
// include/uapi/linux/nbd-netlink.h (unchanged from 4.12 to 6.x; the
// values are pinned by TestNetlinkConstants). Every attribute below is a
// u64 except the index and the socket fd, which are u32.
const (
	nbdGenlName    = "nbd"
	nbdGenlVersion = 1

	nbdCmdConnect    = 1
	nbdCmdDisconnect = 2

	nbdAttrIndex           = 1
	nbdAttrSizeBytes       = 2
	nbdAttrBlockSizeBytes  = 3
	nbdAttrTimeout         = 4
	nbdAttrServerFlags     = 5
	nbdAttrClientFlags     = 6
	nbdAttrSockets         = 7
	nbdAttrDeadConnTimeout = 8

	nbdSockItem = 1 // in nbdAttrSockets
	nbdSockFD   = 1 // in nbdSockItem
)

// nlaTypeMask drops the flag bits from an attribute type (NLA_TYPE_MASK).
const nlaTypeMask = ^uint16(unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)

// Operation names used in errors.
const (
	opNetlinkSocket     = "netlink socket"
	opNetlinkGetFamily  = `netlink get family "nbd"`
	opNetlinkConnect    = "netlink NBD_CMD_CONNECT"
	opNetlinkDisconnect = "netlink NBD_CMD_DISCONNECT"
)

// connectParams is what the kernel is told about the export.
type connectParams struct {
	index     uint32
	size      uint64 // bytes
	blockSize uint64
	flags     uint64 // transmission flags (NBD_FLAG_*)
	timeout   uint64 // seconds, 0: not sent
	deadConn  uint64 // seconds, 0: not sent
	fds       []int  // the kernel's ends of the connections
}

// nlBuilder encodes one netlink request in host byte order: nlmsghdr,
// genlmsghdr, then attributes padded to 4 bytes.
type nlBuilder struct {
	b     []byte
	nests []int // offsets of open nested attributes
}

func newNLRequest(family uint16, seq uint32, cmd, version uint8) *nlBuilder {
	ne := binary.NativeEndian
	b := make([]byte, unix.NLMSG_HDRLEN+4, 128)
	ne.PutUint16(b[4:], family)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	ne.PutUint32(b[8:], seq)
	// nlmsg_pid stays 0: the kernel is the destination.
	b[16], b[17] = cmd, version
	return &nlBuilder{b: b}
}

func (m *nlBuilder) attr(typ uint16, data []byte) {
	ne := binary.NativeEndian
	m.b = ne.AppendUint16(m.b, uint16(unix.SizeofNlAttr+len(data)))
	m.b = ne.AppendUint16(m.b, typ)
	m.b = append(m.b, data...)
	m.pad()
}

func (m *nlBuilder) pad() {
	for len(m.b)%unix.NLA_ALIGNTO != 0 {
		m.b = append(m.b, 0)
	}
}

func (m *nlBuilder) u32(typ uint16, v uint32) {
	m.attr(typ, binary.NativeEndian.AppendUint32(nil, v))
}

func (m *nlBuilder) u64(typ uint16, v uint64) {
	m.attr(typ, binary.NativeEndian.AppendUint64(nil, v))
}

// begin opens a nested attribute; end closes the innermost one.
func (m *nlBuilder) begin(typ uint16) {
	m.nests = append(m.nests, len(m.b))
	m.b = binary.NativeEndian.AppendUint16(m.b, 0)
	m.b = binary.NativeEndian.AppendUint16(m.b, typ|unix.NLA_F_NESTED)
}

func (m *nlBuilder) end() {
	start := m.nests[len(m.nests)-1]
	m.nests = m.nests[:len(m.nests)-1]
	binary.NativeEndian.PutUint16(m.b[start:], uint16(len(m.b)-start))
}

// bytes sets nlmsg_len and returns the message.
func (m *nlBuilder) bytes() []byte {
	binary.NativeEndian.PutUint32(m.b[0:], uint32(len(m.b)))
	return m.b
}

// encodeGetFamily asks the generic netlink controller for a family id.
func encodeGetFamily(seq uint32, name string) []byte {
	m := newNLRequest(unix.GENL_ID_CTRL, seq, unix.CTRL_CMD_GETFAMILY, 1)
	m.attr(unix.CTRL_ATTR_FAMILY_NAME, append([]byte(name), 0))
	return m.bytes()
}

// encodeConnect builds NBD_CMD_CONNECT.
func encodeConnect(family uint16, seq uint32, p *connectParams) []byte {
	m := newNLRequest(family, seq, nbdCmdConnect, nbdGenlVersion)
	m.u32(nbdAttrIndex, p.index)
	m.u64(nbdAttrSizeBytes, p.size)
	m.u64(nbdAttrBlockSizeBytes, p.blockSize)
	if p.timeout != 0 {
		m.u64(nbdAttrTimeout, p.timeout)
	}
	m.u64(nbdAttrServerFlags, p.flags)
	if p.deadConn != 0 {
		m.u64(nbdAttrDeadConnTimeout, p.deadConn)
	}
	m.begin(nbdAttrSockets)
	for _, fd := range p.fds {
		m.begin(nbdSockItem)
		m.u32(nbdSockFD, uint32(fd))
		m.end()
	}
	m.end()
	return m.bytes()
}

// encodeDisconnect builds NBD_CMD_DISCONNECT.
func encodeDisconnect(family uint16, seq uint32, index uint32) []byte {
	m := newNLRequest(family, seq, nbdCmdDisconnect, nbdGenlVersion)
	m.u32(nbdAttrIndex, index)
	return m.bytes()
}

// nlMessage is one decoded netlink message; data follows the nlmsghdr.
type nlMessage struct {
	typ, flags uint16
	seq        uint32
	data       []byte
}

// parseMessages splits a datagram into messages. data aliases b.
func parseMessages(b []byte) ([]nlMessage, error) {
	ne := binary.NativeEndian
	var out []nlMessage
	for len(b) > 0 {
		if len(b) < unix.NLMSG_HDRLEN {
			return nil, fmt.Errorf("%w: netlink message of %d bytes", ErrProtocol, len(b))
		}
		n := int(ne.Uint32(b[0:]))
		if n < unix.NLMSG_HDRLEN || n > len(b) {
			return nil, fmt.Errorf("%w: netlink message length %d in %d bytes", ErrProtocol, n, len(b))
		}
		out = append(out, nlMessage{typ: ne.Uint16(b[4:]), flags: ne.Uint16(b[6:]), seq: ne.Uint32(b[8:]),
			data: b[unix.NLMSG_HDRLEN:n]})
		b = b[min(nlAlign(n), len(b)):]
	}
	return out, nil
}

func nlAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// parseAttrs decodes a flat attribute list; the last of a repeated type
// wins, the NLA_F_* bits are dropped from the type.
func parseAttrs(b []byte) (map[uint16][]byte, error) {
	ne := binary.NativeEndian
	out := map[uint16][]byte{}
	for len(b) >= unix.SizeofNlAttr {
		n := int(ne.Uint16(b[0:]))
		if n < unix.SizeofNlAttr || n > len(b) {
			return nil, fmt.Errorf("%w: netlink attribute length %d in %d bytes", ErrProtocol, n, len(b))
		}
		out[ne.Uint16(b[2:])&nlaTypeMask] = b[unix.SizeofNlAttr:n]
		b = b[min(nlAlign(n), len(b)):]
	}
	return out, nil
}

// parseAck decodes an NLMSG_ERROR message: errno 0 is an acknowledgement.
// msg is the kernel's extended-ack text, if it sent one.
func parseAck(m nlMessage) (errno unix.Errno, msg string, err error) {
	if len(m.data) < unix.SizeofNlMsgerr {
		return 0, "", fmt.Errorf("%w: netlink error message of %d bytes", ErrProtocol, len(m.data))
	}
	errno = unix.Errno(-int32(binary.NativeEndian.Uint32(m.data[0:])))
	if m.flags&unix.NLM_F_ACK_TLVS == 0 {
		return errno, "", nil
	}
	// The request's header (capped) or the whole request follows, then
	// the TLVs.
	skip := unix.SizeofNlMsgerr
	if m.flags&unix.NLM_F_CAPPED == 0 {
		reqLen := int(binary.NativeEndian.Uint32(m.data[4:]))
		skip = 4 + nlAlign(reqLen)
	}
	if skip > len(m.data) {
		return errno, "", nil
	}
	attrs, err := parseAttrs(m.data[skip:])
	if err != nil {
		return errno, "", nil // the errno is what matters
	}
	if s := attrs[unix.NLMSGERR_ATTR_MSG]; len(s) > 0 {
		if s[len(s)-1] == 0 {
			s = s[:len(s)-1]
		}
		msg = string(s)
	}
	return errno, msg, nil
}

// genlConn is a generic netlink socket. It is not safe for concurrent use.
type genlConn struct {
	fd  int
	seq uint32
	buf []byte
}

// dialGenl opens a generic netlink socket with extended acks.
func dialGenl() (*genlConn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_GENERIC)
	if err != nil {
		return nil, &kernelError{Op: opNetlinkSocket, Err: err}
	}
	// Best effort: without them errors carry no text, or echo the request.
	unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, &kernelError{Op: opNetlinkSocket, Err: err}
	}
	return newGenlConn(fd), nil
}

// newGenlConn wraps fd, which talks to the kernel (or to a fake in tests).
func newGenlConn(fd int) *genlConn { return &genlConn{fd: fd, buf: make([]byte, 32<<10)} }

func (c *genlConn) Close() error { return unix.Close(c.fd) }

func (c *genlConn) nextSeq() uint32 {
	c.seq++
	return c.seq
}

// execute sends req (whose sequence number is seq) and returns the data
// messages of the reply, once the kernel acknowledged it.
func (c *genlConn) execute(op string, req []byte, seq uint32) ([]nlMessage, error) {
	if _, err := unix.Write(c.fd, req); err != nil {
		return nil, &kernelError{Op: op, Err: err}
	}
	var replies []nlMessage
	for {
		n, err := unix.Read(c.fd, c.buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, &kernelError{Op: op, Err: err}
		}
		msgs, err := parseMessages(c.buf[:n])
		if err != nil {
			return nil, &kernelError{Op: op, Err: err}
		}
		for _, m := range msgs {
			if m.seq != seq {
				continue // a stale reply to an earlier request
			}
			switch m.typ {
			case unix.NLMSG_ERROR:
				errno, text, err := parseAck(m)
				switch {
				case err != nil:
					return nil, &kernelError{Op: op, Err: err}
				case errno != 0:
					return nil, &kernelError{Op: op, Err: errno, Msg: text}
				}
				return replies, nil
			case unix.NLMSG_DONE:
				return replies, nil
			default:
				m.data = append([]byte(nil), m.data...) // c.buf is reused
				replies = append(replies, m)
			}
		}
	}
}

// family resolves a generic netlink family name to its id. A missing
// family is a kernelError wrapping ENOENT.
func (c *genlConn) family(name string) (uint16, error) {
	seq := c.nextSeq()
	replies, err := c.execute(opNetlinkGetFamily, encodeGetFamily(seq, name), seq)
	if err != nil {
		return 0, err
	}
	for _, m := range replies {
		if len(m.data) < unix.GENL_HDRLEN {
			continue
		}
		attrs, err := parseAttrs(m.data[unix.GENL_HDRLEN:])
		if err != nil {
			return 0, &kernelError{Op: opNetlinkGetFamily, Err: err}
		}
		if id := attrs[unix.CTRL_ATTR_FAMILY_ID]; len(id) == 2 {
			return binary.NativeEndian.Uint16(id), nil
		}
	}
	return 0, &kernelError{Op: opNetlinkGetFamily, Err: fmt.Errorf("%w: no family id in the reply", ErrProtocol)}
}

// connect sends NBD_CMD_CONNECT and returns the index the kernel reports
// (Linux 4.13 and later reply with it; older ones only acknowledge).
func (c *genlConn) connect(family uint16, p *connectParams) (int, error) {
	seq := c.nextSeq()
	replies, err := c.execute(opNetlinkConnect, encodeConnect(family, seq, p), seq)
	if err != nil {
		return 0, err
	}
	for _, m := range replies {
		if len(m.data) < unix.GENL_HDRLEN {
			continue
		}
		if attrs, err := parseAttrs(m.data[unix.GENL_HDRLEN:]); err == nil && len(attrs[nbdAttrIndex]) == 4 {
			return int(binary.NativeEndian.Uint32(attrs[nbdAttrIndex])), nil
		}
	}
	return int(p.index), nil
}

// disconnect sends NBD_CMD_DISCONNECT for a device index.
func (c *genlConn) disconnect(family uint16, index uint32) error {
	seq := c.nextSeq()
	_, err := c.execute(opNetlinkDisconnect, encodeDisconnect(family, seq, index), seq)
	return err
}

// dialNBDFamily opens a generic netlink socket and resolves the "nbd"
// family.
func dialNBDFamily() (*genlConn, uint16, error) {
	c, err := dialGenl()
	if err != nil {
		return nil, 0, err
	}
	id, err := c.family(nbdGenlName)
	if err != nil {
		c.Close()
		return nil, 0, err
	}
	return c, id, nil
}

// noNetlinkFamily reports errors after which the ioctls may still work:
// no "nbd" family (module not loaded and not autoloadable, or older than
// 4.12) or no generic netlink at all.
func noNetlinkFamily(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.EAFNOSUPPORT)
}
