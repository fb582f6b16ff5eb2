package xenctl

import (
	"bytes"
	"fmt"
	"math"
)

// ParseList parses the text of a tmem LIST operation (xen-tmem-abi.md §7).
//
// text may be the whole buffer Xen filled: parsing stops at the first NUL,
// so a zeroed buffer of any size, or one Xen wrote past the requested length,
// can be passed as it is. An empty text is a valid, empty list (a listing
// with no records). A last line without its newline is accepted, and
// [List.Format] adds the newline.
//
// The parser accepts what real hypervisors print: the bare "T" trailer of
// Xen 4.4 and later and the "T=" trailer with cycle counters of 4.0–4.3,
// unpadded hexadecimal uuids, several P= lines with the same PI under one
// client (shared pools show the owner's pool id), P= lines before any C=
// line (see [ListClient.Implicit]), records in any order, keys it does not
// know (kept in Extra) and a key repeated in one record (the repeat is kept
// in Extra). S= lines never make it fail: see [ListShared].
//
// Any other malformed line makes it return an error that wraps
// [ErrListFormat] and names the line. Known keys must carry values in the
// form Xen prints them (decimal without leading zeros, a sign only on
// counters Xen prints signed, lowercase hexadecimal for U0 and U1, 0 or 1
// for co and fr), so that formatting the result gives the same text back.
// The result does not refer to text.
func ParseList(text []byte) (*List, error) {
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	p := listParser{l: new(List), cur: -1}
	if n := listCountTag(text, 'C'); n > 0 {
		p.l.Clients = make([]ListClient, 0, n)
	}
	if n := listCountTag(text, 'S'); n > 0 {
		p.l.Shared = make([]ListShared, 0, n)
	}
	for n := 1; len(text) > 0; n++ {
		line := text
		text = nil
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line, text = line[:i], line[i+1:]
		}
		if err := p.line(line, text, n); err != nil {
			return nil, err
		}
	}
	return p.l, nil
}

// listParser holds the state of one ParseList call.
type listParser struct {
	l     *List
	cur   int // index of the client P= lines attach to, or -1
	stage int // how far a listing in Xen's order would have got; see track
	// items is scratch space for the known-key order of one record.
	items []uint8
}

// The stages of a listing in Xen's record order.
const (
	listStageStart = iota
	listStageGlobal
	listStageShared
	listStageClients
	listStageTrailer
)

// line parses one line; rest is the text after it.
func (p *listParser) line(line, rest []byte, n int) error {
	if len(line) == 1 && line[0] == 'T' {
		return p.trailer(line, n)
	}
	if len(line) < 2 || line[1] != '=' {
		if len(line) == 0 {
			return listErr(n, "empty line", line)
		}
		return listErr(n, "unknown record", line)
	}
	items := line[2:]
	switch line[0] {
	case 'G':
		return p.global(line, items, n)
	case 'S':
		p.shared(line, items)
		return nil
	case 'C':
		return p.client(line, items, rest, n)
	case 'P':
		return p.pool(line, items, rest, n)
	case 'T':
		return p.trailer(line, n)
	}
	return listErr(n, "unknown record", line)
}

// track records the tag of the next record. While the records come in
// Xen's order (G, S…, C and P lines, T) nothing is stored; from the first
// record out of that order on, l.order holds every tag.
func (p *listParser) track(tag byte) {
	if p.l.order == nil {
		// A tag may follow records up to stage upTo and moves the
		// listing to stage next.
		upTo, next := listStageStart, listStageGlobal
		switch tag {
		case 'S':
			upTo, next = listStageShared, listStageShared
		case 'C', 'P':
			upTo, next = listStageClients, listStageClients
		case 'T':
			upTo, next = listStageClients, listStageTrailer
		}
		if p.stage <= upTo {
			p.stage = next
			return
		}
		p.l.order = p.l.appendCanonicalOrder(nil)
	}
	p.l.order = append(p.l.order, tag)
}

func (p *listParser) global(line, items []byte, n int) error {
	if p.l.Global != nil {
		return listErr(n, "second G record", line)
	}
	p.track('G')
	g := new(ListGlobal)
	if _, err := listParseItems(p, listGlobalTable, g, &g.form, &g.Extra, items, n, false); err != nil {
		return err
	}
	g.Long = listGlobalTable.hasLong(g.form.mask)
	g.form.long = g.Long
	p.l.Global = g
	return nil
}

func (p *listParser) shared(line, items []byte) {
	p.track('S')
	p.l.Shared = append(p.l.Shared, ListShared{})
	s := &p.l.Shared[len(p.l.Shared)-1]
	bad, _ := listParseItems(p, listSharedTable, s, &s.form, &s.Extra, items, 0, true)
	s.Long = listSharedTable.hasLong(s.form.mask)
	s.form.long = s.Long
	if bad || len(p.l.Shared) > 1 {
		s.Garbled = true
		s.Raw = string(line)
	}
}

func (p *listParser) client(line, items, rest []byte, n int) error {
	p.track('C')
	p.l.Clients = append(p.l.Clients, ListClient{})
	p.cur = len(p.l.Clients) - 1
	c := &p.l.Clients[p.cur]
	if _, err := listParseItems(p, listClientTable, c, &c.form, &c.Extra, items, n, false); err != nil {
		return err
	}
	c.Long = listClientTable.hasLong(c.form.mask)
	c.HasCap = c.form.mask&(1<<listClientCap) != 0
	c.form.long, c.form.cap = c.Long, c.HasCap
	if np := listCountPools(rest); np > 0 {
		c.Pools = make([]ListPool, 0, np)
	}
	return nil
}

func (p *listParser) pool(line, items, rest []byte, n int) error {
	p.track('P')
	implicit := p.cur < 0
	if implicit {
		p.l.Clients = append(p.l.Clients, ListClient{Implicit: true})
		p.cur = len(p.l.Clients) - 1
		p.l.Clients[p.cur].Pools = make([]ListPool, 0, 1+listCountPools(rest))
	}
	c := &p.l.Clients[p.cur]
	c.Pools = append(c.Pools, ListPool{})
	pl := &c.Pools[len(c.Pools)-1]
	if _, err := listParseItems(p, listPoolTable, pl, &pl.form, &pl.Extra, items, n, false); err != nil {
		return err
	}
	pl.Long = listPoolTable.hasLong(pl.form.mask)
	pl.form.long = pl.Long
	if implicit {
		c.ID = pl.ClientID
	}
	return nil
}

func (p *listParser) trailer(line []byte, n int) error {
	if p.l.Trailer != nil {
		return listErr(n, "second T record", line)
	}
	p.track('T')
	t := new(ListTrailer)
	if len(line) > 1 {
		if err := listParseTrailer(t, line[2:], n); err != nil {
			return err
		}
	}
	p.l.Trailer = t
	return nil
}

// listParseItems parses the items of one record into r. It fills form and
// appends unknown and repeated keys to extra. In lenient mode it skips
// items it cannot parse and reports that it did; otherwise it returns an
// error for the first such item, for line n.
func listParseItems[R any](p *listParser, t *listTable[R], r *R, form *listForm, extra *[]ListKV, items []byte, n int, lenient bool) (bad bool, err error) {
	form.set = true
	order := p.items[:0]
	sorted := true
	last, hint := -1, 0
	for pos, more := 0, len(items) > 0; more; pos++ {
		item, key, val, rest, ok, next := listNextItem(items)
		items, more = rest, next
		if !ok {
			if lenient {
				bad = true
				continue
			}
			return true, listErr(n, "item is not key:value", item)
		}
		i := t.lookup(key, hint)
		if i >= 0 && form.mask&(1<<i) != 0 && t.keys[i].kind != listSharer {
			i = -1 // a repeated key: keep it as it is
		}
		if i < 0 {
			*extra = append(*extra, ListKV{Key: string(key), Value: string(val), Pos: pos})
			continue
		}
		if !listSetValue(t.field(r, i), t.keys[i].kind, val) {
			if lenient {
				bad = true
				continue
			}
			return true, listErr(n, "bad value", item)
		}
		form.mask |= 1 << i
		if i < last {
			sorted = false
		}
		last, hint = i, i+1
		if t.keys[i].kind == listSharer {
			hint = i
		}
		order = append(order, uint8(i))
	}
	p.items = order
	if !sorted {
		form.order = bytes.Clone(order)
	}
	return bad, nil
}

// listParseTrailer parses the items of a "T=" line: groups of four items
// <Op>n, <Op>t, <Op>x, <Op>m become counters, anything else goes to Extra.
func listParseTrailer(t *ListTrailer, items []byte, n int) error {
	t.Perf = true
	for pos, more := 0, len(items) > 0; more; {
		item, key, val, rest, ok, next := listNextItem(items)
		items, more = rest, next
		if !ok {
			return listErr(n, "item is not key:value", item)
		}
		if c, rest, restMore, ok := listParseCycles(key, val, items, more); ok {
			t.Counters = append(t.Counters, c)
			items, more = rest, restMore
			pos += 4
			continue
		}
		t.Extra = append(t.Extra, ListKV{Key: string(key), Value: string(val), Pos: pos})
		pos++
	}
	return nil
}

// listParseCycles parses a counter whose first item is key:val and whose
// other three items start items. ok is false when they do not form one.
func listParseCycles(key, val, items []byte, more bool) (c ListCycles, rest []byte, restMore, ok bool) {
	if len(key) != 2 || key[1] != 'n' {
		return c, nil, false, false
	}
	c.Op = key[0]
	if c.Count, ok = listParseUint(val); !ok {
		return c, nil, false, false
	}
	for _, suffix := range [3]byte{'t', 'x', 'm'} {
		if !more {
			return c, nil, false, false
		}
		_, k, v, rest, ok, next := listNextItem(items)
		items, more = rest, next
		if !ok || len(k) != 2 || k[0] != c.Op || k[1] != suffix {
			return c, nil, false, false
		}
		switch suffix {
		case 't':
			c.Cycles, ok = listParseUint(v)
		case 'x':
			c.Max, ok = listParseInt(v)
		case 'm':
			c.Min, ok = listParseInt(v)
		}
		if !ok {
			return c, nil, false, false
		}
	}
	return c, items, more, true
}

// listNextItem splits the first comma-separated item off items and splits
// that at its first colon. more reports whether a comma followed the item;
// ok is false when the item has no colon or an empty key.
func listNextItem(items []byte) (item, key, val, rest []byte, ok, more bool) {
	end, colon := len(items), -1
	for i, c := range items {
		if c == ',' {
			end, rest, more = i, items[i+1:], true
			break
		}
		if c == ':' && colon < 0 {
			colon = i
		}
	}
	item = items[:end]
	if colon <= 0 {
		return item, nil, nil, rest, false, more
	}
	return item, item[:colon], item[colon+1:], rest, true, more
}

// listSetValue parses val into the field dst points to.
func listSetValue(dst any, kind listKind, val []byte) bool {
	var ok bool
	switch d := dst.(type) {
	case *uint64:
		if kind == listHex {
			*d, ok = listParseHex(val)
		} else {
			*d, ok = listParseUint(val)
		}
	case *int64:
		*d, ok = listParseInt(val)
	case *uint16:
		var v uint64
		v, ok = listParseUint(val)
		ok = ok && v <= math.MaxUint16
		*d = uint16(v)
	case *bool:
		ok = len(val) == 1 && (val[0] == '0' || val[0] == '1')
		*d = ok && val[0] == '1'
	case *ListPoolType:
		*d, ok = listParsePoolType(val)
	case *[]uint16:
		var v uint64
		v, ok = listParseUint(val)
		if ok = ok && v <= math.MaxUint16; ok {
			*d = append(*d, uint16(v))
		}
	}
	return ok
}

// listParseUint parses a decimal number without sign or leading zeros.
func listParseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		d := uint64(c - '0')
		if d > 9 || v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// listParseInt parses a decimal number with an optional minus sign and no
// leading zeros; "-0" is rejected because Xen never prints it.
func listParseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	u, ok := listParseUint(b)
	switch {
	case !ok:
		return 0, false
	case !neg:
		return int64(u), u <= math.MaxInt64
	case u == 0 || u > 1<<63:
		return 0, false
	}
	return -int64(u-1) - 1, true
}

// listParseHex parses lowercase hexadecimal without leading zeros.
func listParseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

func listParsePoolType(b []byte) (ListPoolType, bool) {
	if len(b) != 2 {
		return 0, false
	}
	var t ListPoolType
	switch b[0] {
	case 'P':
		t |= ListPoolPersistent
	case 'E':
	default:
		return 0, false
	}
	switch b[1] {
	case 'S':
		t |= ListPoolShared
	case 'P':
	default:
		return 0, false
	}
	return t, true
}

// listCountTag counts the lines of text that start with tag and '='.
func listCountTag(text []byte, tag byte) int {
	n := bytes.Count(text, []byte{'\n', tag, '='})
	if len(text) >= 2 && text[0] == tag && text[1] == '=' {
		n++
	}
	return n
}

// listCountPools counts the P= lines at the start of text.
func listCountPools(text []byte) int {
	n := 0
	for len(text) >= 2 && text[0] == 'P' && text[1] == '=' {
		n++
		i := bytes.IndexByte(text, '\n')
		if i < 0 {
			break
		}
		text = text[i+1:]
	}
	return n
}

// listErr returns an error for line n that quotes at most 80 bytes of text.
func listErr(n int, what string, text []byte) error {
	const max = 80
	if len(text) > max {
		return fmt.Errorf("%w: line %d: %s: %q...", ErrListFormat, n, what, text[:max])
	}
	return fmt.Errorf("%w: line %d: %s: %q", ErrListFormat, n, what, text)
}
