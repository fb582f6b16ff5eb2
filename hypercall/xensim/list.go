package xensim

import (
	"strconv"

	"github.com/xentmem/xentmem/hypercall/hypercalltest"
)

// The LIST control operation (tmemc_list and friends, xen-tmem-abi.md §7).
// Each record is formatted with scnprintf into a 1024-byte scratch buffer
// and copied to the caller together with its NUL. The quirks are kept:
//
//   - a client's C= line is copied without any length check, and once the
//     running offset passes the length the unsigned remainder wraps, so
//     later records are written unchecked: the text can run past len;
//   - the scratch offset is not reset between global shared pools, so
//     every S= record after the first is garbled (it starts with the
//     first record's text);
//   - 4.0–4.3 count a record even when copying it failed; 4.4+ do not.

const listBSize = 1024 // BSIZE

// scratch is the info[BSIZE] buffer of the tmemc_list_* calls. Xen has one
// per call, uninitialised; sharing one is equivalent because every record
// only reads bytes written earlier in the same call (even a garbled S=
// record: its first bytes are the previous record's). tmp is where the
// pieces are formatted before scnprintf copies them in.
type scratch struct {
	buf    [listBSize]byte
	tmpBuf [listBSize]byte
	tmp    []byte
}

// printf is scnprintf(info+at, BSIZE-at, ...) for already formatted text:
// it writes what fits (leaving room for the NUL) and returns the count.
func (sc *scratch) printf(at int, text []byte) int {
	room := listBSize - at
	if room <= 0 {
		return 0
	}
	n := len(text)
	if n > room-1 {
		n = room - 1
	}
	copy(sc.buf[at:], text[:n])
	sc.buf[at+n] = 0
	return n
}

// listWriter holds one LIST call's destination and scratch buffer.
type listWriter struct {
	t    *tmem
	mem  *hypercalltest.Memory
	addr uint64
	long bool
	sc   scratch
}

// copyOut is copy_to_guest_offset(buf, off, info, n+1): true when every
// byte was copied. Like Xen's guest copy it writes as much as it can
// before the first inaccessible byte.
func (w *listWriter) copyOut(off int, src []byte) bool {
	addr := w.addr + uint64(uint32(off))
	if b, err := w.mem.Bytes(addr, len(src)); err == nil {
		copy(b, src)
		return true
	}
	lo, hi := 0, len(src)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if _, err := w.mem.Bytes(addr, mid); err == nil {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if lo > 0 {
		b, _ := w.mem.Bytes(addr, lo)
		copy(b, src[:lo])
	}
	return false
}

// emit copies n+1 bytes of sc at off and reports whether the record
// counts: always on 4.0–4.3, only when copied from 4.4.
func (w *listWriter) emit(sc *scratch, off, n int) bool {
	ok := w.copyOut(off, sc.buf[:n+1])
	return ok || !w.t.sim.rel.atLeast(4, 4)
}

// list is tmemc_list: 0, or -1 when cli is not a tmem client.
func (t *tmem) list(cli uint16, mem *hypercalltest.Memory, addr uint64, length uint32, long bool) int {
	w := &listWriter{t: t, mem: mem, addr: addr, long: long}
	w.sc.tmp = w.sc.tmpBuf[:0]
	if cli != allClients {
		c := t.clientOf(cli)
		if c == nil {
			return -1
		}
		w.client(c, 0, length)
		return 0
	}
	off := w.global(0, length)
	off += w.shared(off, length-uint32(off))
	for _, c := range t.clients {
		off += w.client(c, off, length-uint32(off))
	}
	w.perf(off, length-uint32(off))
	return 0
}

func (sc *scratch) key(sep byte, k string, v int64) {
	if sep != 0 {
		sc.tmp = append(sc.tmp, sep)
	}
	sc.tmp = append(sc.tmp, k...)
	sc.tmp = append(sc.tmp, ':')
	sc.tmp = strconv.AppendInt(sc.tmp, v, 10)
}

func (sc *scratch) ukey(k string, v uint64) {
	sc.tmp = append(sc.tmp, ',')
	sc.tmp = append(sc.tmp, k...)
	sc.tmp = append(sc.tmp, ':')
	sc.tmp = strconv.AppendUint(sc.tmp, v, 10)
}

func (sc *scratch) xkey(k string, v uint64) {
	sc.tmp = append(sc.tmp, ',')
	sc.tmp = append(sc.tmp, k...)
	sc.tmp = append(sc.tmp, ':')
	sc.tmp = strconv.AppendUint(sc.tmp, v, 16)
}

func (w *listWriter) end() byte {
	if w.long {
		return ','
	}
	return '\n'
}

// global is tmemc_list_global: the G= line.
func (w *listWriter) global(off int, length uint32) int {
	t := w.t
	st := &t.stats
	sc := &w.sc
	sc.tmp = append(sc.tmp[:0], "G="...)
	sc.key(0, "Tt", int64(st.totalOps))
	for _, kv := range [...]struct {
		k string
		v uint64
	}{{"Te", st.erroredOps}, {"Cf", st.failedCopies}, {"Af", st.allocFailed}, {"Pf", st.allocPageFailed},
		{"Ta", t.sim.heap.list}, {"Lm", st.lowOnMemory}, {"Et", st.evictedPgs}, {"Ea", st.evictAttempts},
		{"Rt", st.relinqPgs}, {"Ra", st.relinqAttempts}, {"Rx", st.maxEvicts}, {"Fp", st.totalFlushPool}} {
		sc.ukey(kv.k, kv.v)
	}
	sc.tmp = append(sc.tmp, w.end())
	n := sc.printf(0, sc.tmp)
	if w.long {
		sc.tmp = sc.tmp[:0]
		sc.key(0, "Ec", t.ephCount)
		sc.key(',', "Em", st.ephCountMax)
		sc.key(',', "Oc", st.objCount)
		sc.key(',', "Om", st.objCountMax)
		sc.key(',', "Nc", st.nodeCount)
		sc.key(',', "Nm", st.nodeCountMax)
		sc.key(',', "Pc", st.pgpCount)
		sc.key(',', "Pm", st.pgpCountMax)
		if t.sim.rel.atLeastPoint(4, 0, 1) {
			sc.key(',', "Fc", st.pageCount)
			sc.key(',', "Fm", st.pageCountMax)
			sc.key(',', "Sc", 0)
			sc.key(',', "Sm", 0)
			sc.ukey("Ep", st.totGoodEphPuts)
			sc.ukey("Gd", st.dedupedPuts)
			sc.ukey("Zt", 0)
			sc.ukey("Gz", 0)
		}
		sc.tmp = append(sc.tmp, '\n')
		n += sc.printf(n, sc.tmp)
	}
	sum := off
	if uint32(sum+n) >= length {
		return sum
	}
	if w.emit(sc, off+sum, n) {
		sum += n
	}
	return sum
}

// poolStats appends the long-form statistics of a P= or S= record.
func poolStats(sc *scratch, p *pool) {
	sc.key(0, "Pc", p.pgpCount)
	sc.key(',', "Pm", p.pgpCountMax)
	sc.key(',', "Oc", p.objCount)
	sc.key(',', "Om", p.objCountMax)
	sc.ukey("Nc", uint64(p.objnodeCount))
	sc.ukey("Nm", uint64(p.objnodeCountMax))
	for _, kv := range [...]struct {
		k string
		v uint64
	}{{"ps", p.goodPuts}, {"pt", p.puts}, {"pd", p.dupPutsFlushed}, {"pr", p.dupPutsReplaced},
		{"px", p.noMemPuts}, {"gs", p.foundGets}, {"gt", p.gets}, {"fs", p.flushsFound}, {"ft", p.flushs},
		{"os", p.flushObjsFound}, {"ot", p.flushObjs}} {
		sc.ukey(kv.k, kv.v)
	}
	sc.tmp = append(sc.tmp, '\n')
}

func poolType(p *pool) string {
	switch {
	case p.persistent && p.shared:
		return "PS"
	case p.persistent:
		return "PP"
	case p.shared:
		return "ES"
	}
	return "EP"
}

// shared is tmemc_list_shared. n is deliberately not reset between pools.
func (w *listWriter) shared(off int, length uint32) int {
	sc := &w.sc
	n, sum := 0, 0
	for i, p := range w.t.shared {
		if p == nil {
			continue
		}
		sc.tmp = append(sc.tmp[:0], "S="...)
		sc.key(0, "SI", int64(i))
		sc.tmp = append(sc.tmp, ",PT:"...)
		sc.tmp = append(sc.tmp, poolType(p)...)
		sc.xkey("U0", p.uuid[0])
		sc.xkey("U1", p.uuid[1])
		n = sc.printf(n, sc.tmp)
		for _, sl := range p.sharers {
			sc.tmp = sc.tmp[:0]
			sc.key(',', "SC", int64(sl.c.id))
			n += sc.printf(n, sc.tmp)
		}
		n += sc.printf(n, []byte{w.end()})
		if w.long {
			sc.tmp = sc.tmp[:0]
			poolStats(sc, p)
			n += sc.printf(n, sc.tmp)
		}
		if uint32(sum+n) >= length {
			return sum
		}
		if w.emit(sc, off+sum, n) {
			sum += n
		}
	}
	return sum
}

// client is tmemc_list_client: the C= line (copied unconditionally) and
// one P= line per pool slot.
func (w *listWriter) client(c *client, off int, length uint32) int {
	t := w.t
	sc := &w.sc
	sc.tmp = append(sc.tmp[:0], "C="...)
	sc.key(0, "CI", int64(c.id))
	sc.key(',', "ww", int64(int32(c.weight)))
	if !t.sim.rel.atLeast(4, 8) {
		sc.key(',', "ca", int64(int32(c.cap)))
	}
	sc.key(',', "co", b2i(c.compress))
	sc.key(',', "fr", b2i(c.frozen))
	sc.ukey("Tc", c.totalCycles)
	sc.key(',', "Ge", int64(c.succEphGets))
	sc.key(',', "Pp", int64(c.succPersPuts))
	sc.key(',', "Gp", int64(c.succPersGets))
	sc.tmp = append(sc.tmp, w.end())
	n := sc.printf(0, sc.tmp)
	if w.long {
		sc.tmp = sc.tmp[:0]
		sc.key(0, "Ec", c.ephCount)
		sc.key(',', "Em", c.ephCountMx)
		sc.key(',', "cp", int64(c.compressedPages))
		sc.key(',', "cb", c.compressedSum)
		sc.key(',', "cn", int64(c.compressPoor))
		sc.key(',', "cm", int64(c.compressNomem))
		sc.tmp = append(sc.tmp, '\n')
		n += sc.printf(n, sc.tmp)
	}
	sum := 0
	if w.emit(sc, off+sum, n) {
		sum += n
	}
	for _, p := range c.pools {
		if p == nil {
			continue
		}
		s := p.shared
		sc.tmp = append(sc.tmp[:0], "P="...)
		sc.key(0, "CI", int64(c.id))
		sc.key(',', "PI", int64(p.id))
		sc.tmp = append(sc.tmp, ",PT:"...)
		sc.tmp = append(sc.tmp, poolType(p)...)
		var u0, u1 uint64
		if s {
			u0, u1 = p.uuid[0], p.uuid[1]
		}
		sc.xkey("U0", u0)
		sc.xkey("U1", u1)
		sc.tmp = append(sc.tmp, w.end())
		n = sc.printf(0, sc.tmp)
		if w.long {
			sc.tmp = sc.tmp[:0]
			poolStats(sc, p)
			n += sc.printf(n, sc.tmp)
		}
		if uint32(sum+n) >= length {
			return sum
		}
		if w.emit(sc, off+sum, n) {
			sum += n
		}
	}
	return sum
}

// perf is tmemc_list_global_perf: "T" on 4.4+, the cycle counters before.
func (w *listWriter) perf(off int, length uint32) int {
	sc := &w.sc
	sc.tmp = append(sc.tmp[:0], "T="...)
	if !w.t.sim.rel.atLeast(4, 4) {
		sc.tmp = w.t.perf.appendTo(sc.tmp)
	}
	n := sc.printf(0, sc.tmp)
	n-- // overwrite the trailing comma (or the '=' of a bare "T=")
	n += sc.printf(n, []byte{'\n'})
	if uint32(n) >= length {
		return 0
	}
	if w.emit(sc, off, n) {
		return n
	}
	return 0
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
