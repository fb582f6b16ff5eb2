package nbd

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// session is what the handshake negotiated for one connection.
type session struct {
	export      *Export
	structured  bool // NBD_OPT_STRUCTURED_REPLY acknowledged
	baseAlloc   bool // base:allocation selected (context id 1)
	sizesAgreed bool // the client asked for NBD_INFO_BLOCK_SIZE in GO
	noZeroes    bool
	fixed       bool
}

// handshaker runs the fixed newstyle negotiation on one connection.
type handshaker struct {
	exports []Export
	r       *bufio.Reader
	w       *bufio.Writer
	sess    session
	hdr     [optionHeaderLen]byte
	out     []byte // scratch for option replies
}

// handshake negotiates until the client enters transmission (GO or
// EXPORT_NAME) and returns the session. ABORT, a hard disconnect and any
// protocol violation return an error, after which the connection must be
// closed.
func handshake(exports []Export, r *bufio.Reader, w *bufio.Writer) (*session, error) {
	h := &handshaker{exports: exports, r: r, w: w}
	var greet [18]byte
	binary.BigEndian.PutUint64(greet[0:], magicInit)
	binary.BigEndian.PutUint64(greet[8:], magicOpt)
	binary.BigEndian.PutUint16(greet[16:], flagFixedNewstyle|flagNoZeroes)
	w.Write(greet[:])
	if err := w.Flush(); err != nil {
		return nil, err
	}
	var cf [4]byte
	if _, err := io.ReadFull(r, cf[:]); err != nil {
		return nil, err
	}
	flags := binary.BigEndian.Uint32(cf[:])
	if flags&^clientKnownFlags != 0 {
		return nil, fmt.Errorf("%w: unknown client flags %#x", ErrProtocol, flags)
	}
	h.sess.fixed = flags&clientFixedNewstyle != 0
	h.sess.noZeroes = flags&clientNoZeroes != 0
	for {
		done, err := h.option()
		if err != nil || done {
			return &h.sess, err
		}
	}
}

// option handles one option; done reports entry into transmission.
func (h *handshaker) option() (done bool, err error) {
	if _, err := io.ReadFull(h.r, h.hdr[:]); err != nil {
		return false, err
	}
	be := binary.BigEndian
	if m := be.Uint64(h.hdr[0:]); m != magicOpt {
		return false, fmt.Errorf("%w: option magic %#x", ErrProtocol, m)
	}
	opt, n := be.Uint32(h.hdr[8:]), be.Uint32(h.hdr[12:])
	if n > maxOptionLen {
		return false, fmt.Errorf("%w: option %d with %d bytes of data", ErrProtocol, opt, n)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(h.r, data); err != nil {
		return false, err
	}
	if !h.sess.fixed && opt != optExportName {
		return false, fmt.Errorf("%w: option %d without fixed newstyle", ErrProtocol, opt)
	}
	switch opt {
	case optExportName:
		return true, h.exportName(string(data))
	case optAbort:
		h.reply(opt, repAck, nil)
		h.w.Flush()
		return false, ErrAborted
	case optList:
		err = h.list(data)
	case optInfo, optGo:
		done, err = h.info(opt, data)
	case optStructuredReply:
		if len(data) != 0 {
			err = h.replyErr(opt, repErrInvalid, "STRUCTURED_REPLY takes no data")
		} else {
			h.sess.structured = true
			err = h.reply(opt, repAck, nil)
		}
	case optListMetaContext, optSetMetaContext:
		err = h.metaContext(opt, data)
	case optStartTLS:
		err = h.replyErr(opt, repErrUnsup, "TLS is not supported; use a unix socket")
	default:
		err = h.replyErr(opt, repErrUnsup, "unsupported option")
	}
	if err == nil {
		err = h.w.Flush()
	}
	return done, err
}

func (h *handshaker) lookup(name string) *Export {
	for i := range h.exports {
		if h.exports[i].Name == name {
			return &h.exports[i]
		}
	}
	if name == "" && len(h.exports) > 0 {
		return &h.exports[0] // the default export
	}
	return nil
}

func (h *handshaker) exportName(name string) error {
	e := h.lookup(name)
	if e == nil {
		return fmt.Errorf("%w: no export %q", ErrAborted, name)
	}
	h.sess.export = e
	var b [10 + 124]byte
	binary.BigEndian.PutUint64(b[0:], uint64(e.Size))
	binary.BigEndian.PutUint16(b[8:], e.flags(h.sess.structured))
	out := b[:]
	if h.sess.noZeroes {
		out = b[:10]
	}
	h.w.Write(out)
	return h.w.Flush()
}

func (h *handshaker) list(data []byte) error {
	const opt = optList
	if len(data) != 0 {
		return h.replyErr(opt, repErrInvalid, "LIST takes no data")
	}
	for _, e := range h.exports {
		b := binary.BigEndian.AppendUint32(h.out[:0], uint32(len(e.Name)))
		b = append(b, e.Name...)
		b = append(b, e.Description...)
		if err := h.reply(opt, repServer, b); err != nil {
			return err
		}
	}
	return h.reply(opt, repAck, nil)
}

func (h *handshaker) info(opt uint32, data []byte) (done bool, err error) {
	q, err := parseInfoRequest(data)
	if err != nil {
		return false, h.replyErr(opt, repErrInvalid, err.Error())
	}
	e := h.lookup(q.Name)
	if e == nil {
		return false, h.replyErr(opt, repErrUnknown, fmt.Sprintf("no export %q", q.Name))
	}
	be := binary.BigEndian
	b := be.AppendUint16(h.out[:0], infoExport)
	b = be.AppendUint64(b, uint64(e.Size))
	b = be.AppendUint16(b, e.flags(h.sess.structured))
	if err := h.reply(opt, repInfo, b); err != nil {
		return false, err
	}
	sizes := false
	for _, t := range q.Infos {
		b = be.AppendUint16(h.out[:0], t)
		switch t {
		case infoName:
			b = append(b, e.Name...)
		case infoDescription:
			if e.Description == "" {
				continue
			}
			b = append(b, e.Description...)
		case infoBlockSize:
			bs := e.sizes()
			b = be.AppendUint32(b, bs.Min)
			b = be.AppendUint32(b, bs.Preferred)
			b = be.AppendUint32(b, bs.Max)
			sizes = true
		default:
			continue // unknown requests are ignored
		}
		if err := h.reply(opt, repInfo, b); err != nil {
			return false, err
		}
	}
	if err := h.reply(opt, repAck, nil); err != nil {
		return false, err
	}
	if opt == optGo {
		h.sess.export, h.sess.sizesAgreed = e, sizes
		return true, h.w.Flush()
	}
	return false, nil
}

func (h *handshaker) metaContext(opt uint32, data []byte) error {
	if !h.sess.structured {
		return h.replyErr(opt, repErrInvalid, "negotiate STRUCTURED_REPLY first")
	}
	q, err := parseMetaRequest(data)
	if err != nil {
		return h.replyErr(opt, repErrInvalid, err.Error())
	}
	if h.lookup(q.Name) == nil {
		return h.replyErr(opt, repErrUnknown, fmt.Sprintf("no export %q", q.Name))
	}
	list := opt == optListMetaContext
	selected := list && len(q.Queries) == 0
	for _, s := range q.Queries {
		selected = selected || metaMatches(s, list)
	}
	if !list {
		h.sess.baseAlloc = selected
	}
	if selected {
		id := uint32(metaBaseAllocationID)
		if list {
			id = 0 // reserved in LIST replies
		}
		b := binary.BigEndian.AppendUint32(h.out[:0], id)
		b = append(b, metaBaseAllocation...)
		if err := h.reply(opt, repMetaContext, b); err != nil {
			return err
		}
	}
	return h.reply(opt, repAck, nil)
}

// reply writes one option reply; the caller flushes.
func (h *handshaker) reply(opt, typ uint32, data []byte) error {
	var hdr [20]byte
	binary.BigEndian.PutUint64(hdr[0:], magicOptReply)
	binary.BigEndian.PutUint32(hdr[8:], opt)
	binary.BigEndian.PutUint32(hdr[12:], typ)
	binary.BigEndian.PutUint32(hdr[16:], uint32(len(data)))
	h.w.Write(hdr[:])
	_, err := h.w.Write(data)
	return err
}

func (h *handshaker) replyErr(opt, typ uint32, msg string) error {
	if len(msg) > maxStringLen {
		msg = msg[:maxStringLen]
	}
	return h.reply(opt, typ, []byte(msg))
}

// isClosed reports errors that just mean the peer went away.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
