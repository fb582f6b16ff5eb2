package nbd

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// infoRequest is the data of NBD_OPT_INFO and NBD_OPT_GO.
type infoRequest struct {
	Name  string
	Infos []uint16
}

// metaRequest is the data of NBD_OPT_LIST_META_CONTEXT and
// NBD_OPT_SET_META_CONTEXT.
type metaRequest struct {
	Name    string
	Queries []string
}

const maxMetaQueries = 256

// optReader consumes option data; every method fails instead of reading
// past the end.
type optReader struct {
	b   []byte
	err error
}

func (r *optReader) u16() uint16 {
	if r.err != nil || len(r.b) < 2 {
		r.fail("truncated")
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *optReader) u32() uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.fail("truncated")
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

// str reads a string of n bytes, which must be valid UTF-8 without NUL.
func (r *optReader) str(n uint32) string {
	if r.err != nil {
		return ""
	}
	if n > maxStringLen || uint64(n) > uint64(len(r.b)) {
		r.fail("string length %d", n)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	if !utf8.ValidString(s) {
		r.fail("string is not UTF-8")
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			r.fail("string contains NUL")
		}
	}
	return s
}

func (r *optReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: option data: %s", ErrProtocol, fmt.Sprintf(format, args...))
	}
}

func (r *optReader) end() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	return r.err
}

func parseInfoRequest(data []byte) (infoRequest, error) {
	r := optReader{b: data}
	var q infoRequest
	q.Name = r.str(r.u32())
	n := r.u16()
	if r.err == nil && int(n)*2 != len(r.b) {
		r.fail("%d info requests in %d bytes", n, len(r.b))
	}
	for range n {
		if r.err != nil {
			break
		}
		q.Infos = append(q.Infos, r.u16())
	}
	return q, r.end()
}

func parseMetaRequest(data []byte) (metaRequest, error) {
	r := optReader{b: data}
	var q metaRequest
	q.Name = r.str(r.u32())
	n := r.u32()
	if n > maxMetaQueries {
		r.fail("%d queries", n)
	}
	for range n {
		if r.err != nil {
			break
		}
		q.Queries = append(q.Queries, r.str(r.u32()))
	}
	return q, r.end()
}

// metaMatches reports whether a LIST query selects base:allocation; SET
// queries must name it exactly.
func metaMatches(query string, list bool) bool {
	if query == metaBaseAllocation {
		return true
	}
	return list && query == "base:"
}
