package nbd

import (
	"encoding/binary"
	"fmt"
)

// request is a decoded request header.
type request struct {
	flags  uint16
	typ    uint16
	cookie uint64
	off    uint64
	length uint32
}

// decodeRequest decodes a 28-byte request header. Only a bad magic is an
// error: it means the stream is out of step and the connection must go.
func decodeRequest(b []byte, r *request) error {
	if len(b) < requestHeaderLen {
		return fmt.Errorf("%w: short request header", ErrProtocol)
	}
	be := binary.BigEndian
	if m := be.Uint32(b[0:]); m != magicRequest {
		return fmt.Errorf("%w: request magic %#x", ErrProtocol, m)
	}
	*r = request{
		flags:  be.Uint16(b[4:]),
		typ:    be.Uint16(b[6:]),
		cookie: be.Uint64(b[8:]),
		off:    be.Uint64(b[16:]),
		length: be.Uint32(b[24:]),
	}
	return nil
}

// allowedFlags lists the command flags each command accepts. FUA is
// accepted everywhere, as the protocol asks servers to tolerate it.
func (s *session) allowedFlags(typ uint16) uint16 {
	f := uint16(cmdFlagFUA)
	switch typ {
	case cmdRead:
		if s.structured {
			f |= cmdFlagDF
		}
	case cmdWriteZeroes:
		f |= cmdFlagNoHole | cmdFlagFastZero
	case cmdBlockStatus:
		f |= cmdFlagReqOne
	}
	return f
}

// check validates a request against the session and returns the error to
// reply with, or 0. It never panics, whatever the header holds.
func (s *session) check(r *request) Errno {
	e := s.export
	switch r.typ {
	case cmdRead, cmdWrite, cmdFlush, cmdCache, cmdDisc:
	case cmdTrim:
		if _, ok := e.Device.(Trimmer); !ok {
			return EINVAL
		}
	case cmdWriteZeroes:
		if _, ok := e.Device.(Zeroer); !ok {
			return EINVAL
		}
	case cmdBlockStatus:
		if !s.structured || !s.baseAlloc {
			return EINVAL
		}
	default:
		return EINVAL
	}
	if r.flags&^s.allowedFlags(r.typ) != 0 {
		return EINVAL
	}
	write := r.typ == cmdWrite || r.typ == cmdTrim || r.typ == cmdWriteZeroes
	if write && e.ReadOnly {
		return EPERM
	}
	if r.typ == cmdFlush || r.typ == cmdDisc {
		return 0 // offset and length are meaningless
	}
	if r.off > uint64(e.Size) || uint64(r.length) > uint64(e.Size)-r.off {
		if write {
			return ENOSPC
		}
		return EINVAL
	}
	sizes := e.sizes()
	if (r.typ == cmdRead || r.typ == cmdWrite) && r.length > sizes.Max {
		return EOVERFLOW
	}
	if r.typ == cmdBlockStatus && r.length == 0 {
		return EINVAL
	}
	if s.sizesAgreed && sizes.Min > 1 && r.typ != cmdBlockStatus {
		// The last partial block of an export whose size is not a multiple
		// of Min may be addressed up to the end.
		end := r.off + uint64(r.length)
		if r.off%uint64(sizes.Min) != 0 || (end%uint64(sizes.Min) != 0 && end != uint64(e.Size)) {
			return EINVAL
		}
	}
	return 0
}
