package xenctl

import "strconv"

// Format returns the text of l in Xen's LIST syntax, each line ending in
// "\n" and without the terminating NUL. For a List returned by [ParseList]
// it is the parsed text byte for byte (plus a newline if the last line had
// none).
//
// Each record prints the keys it was parsed with, in the parsed order, with
// its Extra items at their positions. A record built in Go, or one whose
// Long field (or a client's HasCap field) was changed after parsing, prints
// every key of its short form, or of its long form when Long is set, in
// Xen's order: ca only when HasCap is set, and the G= long form with the
// keys Xen 4.0.1 added. A garbled S= record prints its Raw text. Records
// follow the parsed order when it was not Xen's and still fits the records;
// otherwise G, S…, each client's C= and P= lines, then T.
func (l *List) Format() []byte {
	return l.AppendFormat(make([]byte, 0, l.sizeHint()))
}

// AppendFormat appends the text [List.Format] returns to dst.
func (l *List) AppendFormat(dst []byte) []byte {
	if l.order != nil {
		if out, ok := l.appendOrdered(dst); ok {
			return out
		}
	}
	if l.Global != nil {
		dst = listAppendGlobal(dst, l.Global)
	}
	for i := range l.Shared {
		dst = listAppendShared(dst, &l.Shared[i])
	}
	for i := range l.Clients {
		c := &l.Clients[i]
		if !c.Implicit {
			dst = listAppendClient(dst, c)
		}
		for j := range c.Pools {
			dst = listAppendPool(dst, &c.Pools[j])
		}
	}
	if l.Trailer != nil {
		dst = listAppendTrailer(dst, l.Trailer)
	}
	return dst
}

// appendCanonicalOrder appends the record tags of l in Xen's order.
func (l *List) appendCanonicalOrder(dst []byte) []byte {
	if l.Global != nil {
		dst = append(dst, 'G')
	}
	for range l.Shared {
		dst = append(dst, 'S')
	}
	for i := range l.Clients {
		if !l.Clients[i].Implicit {
			dst = append(dst, 'C')
		}
		for range l.Clients[i].Pools {
			dst = append(dst, 'P')
		}
	}
	if l.Trailer != nil {
		dst = append(dst, 'T')
	}
	return dst
}

// appendOrdered writes the records in the order of l.order. It reports
// false, leaving dst as it was, when that order no longer fits the records.
func (l *List) appendOrdered(dst []byte) ([]byte, bool) {
	out := dst
	global, trailer := l.Global, l.Trailer
	shared, client, pool := 0, -1, 0
	for _, tag := range l.order {
		switch tag {
		case 'G':
			if global == nil {
				return dst, false
			}
			out, global = listAppendGlobal(out, global), nil
		case 'S':
			if shared >= len(l.Shared) {
				return dst, false
			}
			out = listAppendShared(out, &l.Shared[shared])
			shared++
		case 'C':
			if client >= 0 && pool != len(l.Clients[client].Pools) {
				return dst, false
			}
			client, pool = client+1, 0
			if client >= len(l.Clients) || l.Clients[client].Implicit {
				return dst, false
			}
			out = listAppendClient(out, &l.Clients[client])
		case 'P':
			if client < 0 {
				client, pool = 0, 0
				if len(l.Clients) == 0 || !l.Clients[0].Implicit {
					return dst, false
				}
			}
			if pool >= len(l.Clients[client].Pools) {
				return dst, false
			}
			out = listAppendPool(out, &l.Clients[client].Pools[pool])
			pool++
		case 'T':
			if trailer == nil {
				return dst, false
			}
			out, trailer = listAppendTrailer(out, trailer), nil
		default:
			return dst, false
		}
	}
	done := global == nil && trailer == nil && shared == len(l.Shared) &&
		client == len(l.Clients)-1 && (client < 0 || pool == len(l.Clients[client].Pools))
	if !done {
		return dst, false
	}
	return out, true
}

// sizeHint estimates the length of the text of l.
func (l *List) sizeHint() int {
	n := 2 + len(l.Shared)
	for i := range l.Clients {
		n += 1 + len(l.Clients[i].Pools)
	}
	return n * 256
}

func listAppendGlobal(dst []byte, g *ListGlobal) []byte {
	mask, order := g.form.mask, g.form.order
	if !g.form.set || g.form.long != g.Long {
		mask, order = listGlobalTable.canonical(g.Long), nil
	}
	dst = append(dst, 'G', '=')
	return append(listAppendItems(dst, listGlobalTable, g, mask, order, g.Extra), '\n')
}

func listAppendClient(dst []byte, c *ListClient) []byte {
	mask, order := c.form.mask, c.form.order
	if !c.form.set || c.form.long != c.Long || c.form.cap != c.HasCap {
		mask, order = listClientTable.canonical(c.Long), nil
		if !c.HasCap {
			mask &^= 1 << listClientCap
		}
	}
	dst = append(dst, 'C', '=')
	return append(listAppendItems(dst, listClientTable, c, mask, order, c.Extra), '\n')
}

func listAppendPool(dst []byte, p *ListPool) []byte {
	mask, order := p.form.mask, p.form.order
	if !p.form.set || p.form.long != p.Long {
		mask, order = listPoolTable.canonical(p.Long), nil
	}
	dst = append(dst, 'P', '=')
	return append(listAppendItems(dst, listPoolTable, p, mask, order, p.Extra), '\n')
}

func listAppendShared(dst []byte, s *ListShared) []byte {
	if s.Raw != "" {
		return append(append(dst, s.Raw...), '\n')
	}
	mask, order := s.form.mask, s.form.order
	if !s.form.set || s.form.long != s.Long {
		mask, order = listSharedTable.canonical(s.Long), nil
	}
	dst = append(dst, 'S', '=')
	return append(listAppendItems(dst, listSharedTable, s, mask, order, s.Extra), '\n')
}

func listAppendTrailer(dst []byte, t *ListTrailer) []byte {
	if !t.Perf && len(t.Counters) == 0 && len(t.Extra) == 0 {
		return append(dst, 'T', '\n')
	}
	w := listItemWriter{dst: append(dst, 'T', '='), extra: t.Extra}
	for _, c := range t.Counters {
		w.flushExtra()
		w.dst = w.appendKey(c.Op, 'n')
		w.dst = strconv.AppendUint(w.dst, c.Count, 10)
		w.dst = w.appendKey(c.Op, 't')
		w.dst = strconv.AppendUint(w.dst, c.Cycles, 10)
		w.dst = w.appendKey(c.Op, 'x')
		w.dst = strconv.AppendInt(w.dst, c.Max, 10)
		w.dst = w.appendKey(c.Op, 'm')
		w.dst = strconv.AppendInt(w.dst, c.Min, 10)
	}
	return append(w.finish(), '\n')
}

// listAppendItems appends the items of record r: the known keys in mask, in
// table order, or those in order when it is not nil, with extra spliced in
// at the positions it records.
func listAppendItems[R any](dst []byte, t *listTable[R], r *R, mask uint64, order []uint8, extra []ListKV) []byte {
	w := listItemWriter{dst: dst, extra: extra}
	if order != nil {
		sharer := 0
		for _, i := range order {
			if int(i) >= len(t.keys) {
				continue
			}
			k := &t.keys[i]
			v := t.field(r, int(i))
			if sc, ok := v.(*[]uint16); ok {
				if sharer < len(*sc) {
					w.flushExtra()
					w.dst = strconv.AppendUint(w.appendName(k.name), uint64((*sc)[sharer]), 10)
					sharer++
				}
				continue
			}
			w.flushExtra()
			w.dst = listAppendValue(w.appendName(k.name), v, k.kind)
		}
		return w.finish()
	}
	for i := range t.keys {
		if mask&(1<<i) == 0 {
			continue
		}
		k := &t.keys[i]
		v := t.field(r, i)
		if sc, ok := v.(*[]uint16); ok {
			for _, d := range *sc {
				w.flushExtra()
				w.dst = strconv.AppendUint(w.appendName(k.name), uint64(d), 10)
			}
			continue
		}
		w.flushExtra()
		w.dst = listAppendValue(w.appendName(k.name), v, k.kind)
	}
	return w.finish()
}

// listAppendValue appends the value of the field v points to.
func listAppendValue(dst []byte, v any, kind listKind) []byte {
	switch v := v.(type) {
	case *uint64:
		if kind == listHex {
			return strconv.AppendUint(dst, *v, 16)
		}
		return strconv.AppendUint(dst, *v, 10)
	case *int64:
		return strconv.AppendInt(dst, *v, 10)
	case *uint16:
		return strconv.AppendUint(dst, uint64(*v), 10)
	case *bool:
		if *v {
			return append(dst, '1')
		}
		return append(dst, '0')
	case *ListPoolType:
		return v.appendTo(dst)
	}
	return dst
}

// listItemWriter writes the comma-separated items of one record and
// splices in the Extra items at their positions.
type listItemWriter struct {
	dst   []byte
	extra []ListKV
	n     int // items written
}

// flushExtra writes the extra items whose position has been reached.
func (w *listItemWriter) flushExtra() {
	for len(w.extra) > 0 && w.extra[0].Pos <= w.n {
		w.writeExtra()
	}
}

func (w *listItemWriter) writeExtra() {
	kv := &w.extra[0]
	w.dst = append(w.appendName(kv.Key), kv.Value...)
	w.extra = w.extra[1:]
}

// appendName starts an item: a comma unless it is the first, the key and
// a colon.
func (w *listItemWriter) appendName(key string) []byte {
	if w.n > 0 {
		w.dst = append(w.dst, ',')
	}
	w.n++
	return append(append(w.dst, key...), ':')
}

// appendKey is appendName for the two-letter key op+suffix.
func (w *listItemWriter) appendKey(op, suffix byte) []byte {
	if w.n > 0 {
		w.dst = append(w.dst, ',')
	}
	w.n++
	return append(w.dst, op, suffix, ':')
}

// finish writes the remaining extra items and returns the text.
func (w *listItemWriter) finish() []byte {
	for len(w.extra) > 0 {
		w.writeExtra()
	}
	return w.dst
}
