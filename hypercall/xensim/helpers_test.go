package xensim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/xentmem/xentmem/hypercall"
)

// raw issues hypercalls with hand-encoded arguments, the way the real
// transcripts' test program did, so that tests exercise the byte layouts
// and not a client library.
type raw struct {
	t     testing.TB
	c     hypercall.Caller
	gen   generation
	iface uint32
	// poolID is the pool_id of control calls (-1 unless a test sets it).
	poolID int32
	buf    *hypercall.Buffer // one page: tmem_op at 0, sysctl at 256, records at 512
	big    *hypercall.Buffer // LIST text
}

const (
	rawOp     = 0
	rawSysctl = 256
	rawRec    = 512
)

func newRaw(t testing.TB, c hypercall.Caller, version string) *raw {
	t.Helper()
	rel, err := parseRelease(version)
	if err != nil {
		t.Fatal(err)
	}
	r := &raw{t: t, c: c, gen: rel.gen, iface: rel.iface, poolID: -1}
	if r.buf, err = c.Alloc(4096); err != nil {
		t.Fatal(err)
	}
	if r.big, err = c.Alloc(64 << 10); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.buf.Close(); r.big.Close() })
	return r
}

func le32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
func le64(b []byte, off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }

// rc returns Xen's signed result.
func rc(v uint64, err error) int64 {
	var e hypercall.Errno
	if errors.As(err, &e) {
		return -int64(e)
	}
	if err != nil {
		panic(err)
	}
	return int64(v)
}

func (r *raw) op(fill func(b []byte)) int64 {
	b := r.buf.Bytes()[rawOp:56]
	clear(b)
	fill(b)
	return rc(r.c.Hypercall(hypercall.OpTmem, hypercall.Args{r.buf.AddrAt(rawOp)}))
}

func (r *raw) newPool(flags uint32, lo, hi uint64) int64 {
	return r.op(func(b []byte) {
		le32(b, 0, hypercall.TMEM_NEW_POOL)
		le64(b, 8, lo)
		le64(b, 16, hi)
		le32(b, 24, flags)
	})
}

func (r *raw) pageOp(cmd uint32, pool int32, oid [3]uint64, index uint32, cmfn uint64) int64 {
	return r.op(func(b []byte) {
		le32(b, 0, cmd)
		le32(b, 4, uint32(pool))
		if r.gen == genA0 {
			le64(b, 8, oid[0])
			le32(b, 16, index)
			le64(b, 32, cmfn)
			return
		}
		le64(b, 8, oid[0])
		le64(b, 16, oid[1])
		le64(b, 24, oid[2])
		le32(b, 32, index)
		le64(b, 48, cmfn)
	})
}

func (r *raw) put(pool int32, oid [3]uint64, index uint32, cmfn uint64) int64 {
	return r.pageOp(hypercall.TMEM_PUT_PAGE, pool, oid, index, cmfn)
}

func (r *raw) get(pool int32, oid [3]uint64, index uint32, cmfn uint64) int64 {
	return r.pageOp(hypercall.TMEM_GET_PAGE, pool, oid, index, cmfn)
}

func (r *raw) flushPage(pool int32, oid [3]uint64, index uint32) int64 {
	return r.pageOp(hypercall.TMEM_FLUSH_PAGE, pool, oid, index, 0)
}

func (r *raw) flushObject(pool int32, oid [3]uint64) int64 {
	return r.pageOp(hypercall.TMEM_FLUSH_OBJECT, pool, oid, 0, 0)
}

func (r *raw) destroyPool(pool int32) int64 {
	return r.op(func(b []byte) { le32(b, 0, hypercall.TMEM_DESTROY_POOL); le32(b, 4, uint32(pool)) })
}

// sysctl issues a sysctl whose union is filled by fill.
func (r *raw) sysctl(cmd, iface uint32, fill func(u []byte)) int64 {
	b := r.buf.Bytes()[rawSysctl : rawSysctl+136]
	clear(b)
	le32(b, 0, cmd)
	le32(b, 4, iface)
	if fill != nil {
		fill(b[8:])
	}
	return rc(r.c.Hypercall(hypercall.OpSysctl, hypercall.Args{r.buf.AddrAt(rawSysctl)}))
}

func (r *raw) sysctlBytes() []byte { return r.buf.Bytes()[rawSysctl : rawSysctl+136] }

// tmemCtl issues a control sub-op in the release's generation: TMEM_CONTROL
// on A, sysctl 24 on B–D. arg1 is len on C/D, arg2 is arg.
func (r *raw) tmemCtl(subop uint32, cli uint32, arg1, arg2 uint32, buf uint64) int64 {
	if r.gen == genA0 || r.gen == genA1 {
		return r.op(func(b []byte) {
			le32(b, 0, hypercall.TMEM_CONTROL)
			le32(b, 4, uint32(r.poolID))
			le32(b, 8, subop)
			le32(b, 12, cli)
			le32(b, 16, arg1)
			le32(b, 20, arg2)
			if r.gen == genA0 {
				le64(b, 32, buf)
			} else {
				le64(b, 48, buf)
			}
		})
	}
	return r.sysctl(hypercall.XEN_SYSCTL_tmem_op, r.iface, func(u []byte) {
		le32(u, 0, subop)
		le32(u, 4, uint32(r.poolID))
		le32(u, 8, cli)
		le32(u, 12, arg1)
		le32(u, 16, arg2)
		le64(u, 48, buf)
	})
}

// list returns LIST's text (up to the NUL) and result.
func (r *raw) list(cli uint32, long bool, length uint32) (string, int64) {
	clear(r.big.Bytes())
	l := uint32(0)
	if long {
		l = 1
	}
	res := r.tmemCtl(hypercall.TMEMC_LIST, cli, length, l, r.big.Addr())
	b := r.big.Bytes()
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b), res
}

func (r *raw) rec() []byte { return r.buf.Bytes()[rawRec : rawRec+512] }

// clientInfo issues GET_CLIENT_INFO and returns the 20-byte record.
func (r *raw) clientInfo(cli uint32) ([]byte, int64) {
	rec := r.rec()
	clear(rec)
	res := r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_GET_CLIENT_INFO, cli, 20, 0, r.buf.AddrAt(rawRec))
	return append([]byte(nil), rec[:20]...), res
}

func (r *raw) setClientInfo(cli uint32, version, maxpools, flags, weight uint32) int64 {
	rec := r.rec()
	clear(rec)
	le32(rec, 0, version)
	le32(rec, 4, maxpools)
	le32(rec, 12, flags)
	le32(rec, 16, weight)
	return r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_SET_CLIENT_INFO, cli, 20, 0, r.buf.AddrAt(rawRec))
}

func (r *raw) freeable() int64 { return r.tmemCtl(hypercall.TMEMC_QUERY_FREEABLE_MB, 0, 0, 0, 0) }

// flush issues FLUSH; the KiB go in arg1 on A/B and in arg on C/D.
func (r *raw) flush(cli uint32, kb uint32) int64 {
	if r.gen >= genC {
		return r.tmemCtl(hypercall.TMEMC_FLUSH, cli, 0, kb, 0)
	}
	return r.tmemCtl(hypercall.TMEMC_FLUSH, cli, kb, 0, 0)
}

// physinfo returns physinfo's free_pages (4.10–4.16 layout offset).
func (r *raw) freePages() uint64 {
	if res := r.sysctl(hypercall.XEN_SYSCTL_physinfo, r.iface, nil); res != 0 {
		r.t.Fatalf("physinfo: %d", res)
	}
	b := r.sysctlBytes()
	return binary.LittleEndian.Uint64(b[8+40:])
}
