package xensim

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/xentmem/xentmem/hypercall"
)

// TestGoldenPVDom0 replays xen-4.12.4-tmem-pv-dom0.txt: dom0 creates pools
// with the guest tmem_op, exercises every page operation and the error
// cases, and drives the control sub-ops.
func TestGoldenPVDom0(t *testing.T) {
	g := loadTranscript(t, "xen-4.12.4-tmem-pv-dom0.txt")
	s, r := goldenSim(t, g)
	replayBoot(t, g, s, r)

	g.expectList(r, "initial all short")
	g.expectList(r, "initial all long")
	g.expectList(r, "initial dom0 short")
	clientInfo := func(label string, cli uint32) {
		t.Helper()
		line := g.next("TMEM GET_CLIENT_INFO [" + label + "]")
		got, res := r.clientInfo(cli)
		if want := field(t, line, "raw20"); hex.EncodeToString(got) != want || res != parseNum(t, field(t, line, "rc")) {
			t.Errorf("GET_CLIENT_INFO [%s]: %x rc %d; real Xen %s", label, got, res, line)
		}
	}
	clientInfo("dom0 before pools", 0)
	g.expect("TMEM QUERY_FREEABLE_MB (before)", r.freeable())

	// (b) pools created by dom0 itself, and the refused flags.
	g.expect("tmem_op(TMEM_NEW_POOL, flags=0x01000000", r.newPool(0x01000000, 0, 0))
	g.expect("tmem_op(TMEM_NEW_POOL, flags=0x01000001", r.newPool(0x01000001, 0, 0))
	g.expect("tmem_op(TMEM_NEW_POOL, flags=0x00000000", r.newPool(0x00000000, 0, 0))
	g.expect("tmem_op(TMEM_NEW_POOL, flags=0x01000010", r.newPool(0x01000010, 0, 0))
	g.expect("tmem_op(TMEM_NEW_POOL, flags=0x01000003", r.newPool(0x01000003, 0, 0))
	g.expect("tmem_op(TMEM_PUT_PAGE, pool 15 (uncreated))", r.put(15, [3]uint64{1, 2, 3}, 0, 0))
	g.expect("tmem_op(cmd=99 unknown, pool 0)", r.pageOp(99, 0, [3]uint64{}, 0, 0))
	g.expectList(r, "after new pools all short")
	g.expectList(r, "after new pools all long")
	g.expectList(r, "after new pools dom0 long")
	g.expectList(r, "after new pools all short len=100")
	// LIST wrote past len: the 111 characters and the NUL.
	if b := r.big.Bytes(); b[110] != '\n' || b[111] != 0 {
		t.Errorf("LIST len=100 should have written 112 bytes; got %q", b[100:113])
	}

	// (d) client info and pools.
	clientInfo("dom0 after pools", 0)
	clientInfo("nonexistent dom7", 7)
	line := g.next("TMEM GET_POOLS cli_id=0 len=128")
	rec := r.rec()
	clear(rec)
	if res := r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_GET_POOLS, 0, 128, 0, r.buf.AddrAt(rawRec)); res != parseNum(t, field(t, line, "rc")) {
		t.Errorf("GET_POOLS: rc %d; real Xen %s", res, line)
	}
	for i := 0; i < 2; i++ {
		want := field(t, g.next(fmt.Sprintf("  pool[%d]:", i)), "raw")
		if got := hex.EncodeToString(rec[i*32 : i*32+32]); got != want {
			t.Errorf("GET_POOLS record %d: %s; real Xen %s", i, got, want)
		}
	}
	g.expect("TMEM GET_POOLS cli_id=0 len=33", r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_GET_POOLS, 0, 33, 0, r.buf.AddrAt(rawRec)))
	g.expect("TMEM SET_CLIENT_INFO cli_id=0 {version=1,maxpools=16,flags=0,weight=7}", r.setClientInfo(0, 1, 16, 0, 7))
	clientInfo("dom0 after set weight=7", 0)
	g.expect("TMEM SET_CLIENT_INFO cli_id=0 {version=2}", r.setClientInfo(0, 2, 0, 0, 0))
	g.expect("TMEM SET_CLIENT_INFO cli_id=0 {version=1,maxpools=17}", r.setClientInfo(0, 1, 17, 0, 0))
	g.expect("TMEM SET_CLIENT_INFO cli_id=0 {version=1,maxpools=16,flags=0x2(compress),weight=7}", r.setClientInfo(0, 1, 16, 2, 7))
	clientInfo("dom0 after set compress", 0)
	g.expect("TMEM SET_CLIENT_INFO cli_id=0 {compress off again}", r.setClientInfo(0, 1, 16, 0, 7))
	g.expect("TMEM SET_CLIENT_INFO cli_id=7 (no such client)", r.setClientInfo(7, 1, 16, 0, 7))
	g.expectList(r, "after set_client_info")

	// (c) page operations, on the persistent pool and then the ephemeral
	// one. Frames A and B are dom0 frames; A holds a recognisable page.
	const frameA, frameB = 0x2933, 0x2931
	mem := s.GuestMemory(0)
	pageA := bytes.Repeat([]byte{0xA5}, pageSize)
	copy(pageA, "XENLAB-TMEM-PAGE-XEN")
	copy(pageA[pageSize-16:], "END-OF-PAGE-A!!!")
	mem.Write(frameA, pageA)
	oid := [3]uint64{1111, 2222, 3333}
	oid5 := [3]uint64{5, 5, 5}
	for _, pool := range []int32{1, 0} {
		p := fmt.Sprintf("pool=%d", pool)
		g.expect("tmem_op(TMEM_PUT_PAGE "+p+" oid=[1111 2222 3333] index=42 cmfn=mfnA)", r.put(pool, oid, 42, frameA))
		g.expect("tmem_op(TMEM_PUT_PAGE "+p+" oid=[1111 2222 3333] index=43 cmfn=mfnA)", r.put(pool, oid, 43, frameA))
		g.expectList(r, "after 2 puts "+strings.Replace(p, "=", " ", 1))
		mem.Write(frameB, make([]byte, pageSize))
		line := g.next("tmem_op(TMEM_GET_PAGE " + p + " index=42 cmfn=mfnB)")
		res := r.get(pool, oid, 42, frameB)
		b := make([]byte, pageSize)
		mem.Read(frameB, b)
		if res != parseNum(t, field(t, line, "rc")) || !bytes.Equal(b, pageA) || !strings.Contains(line, "pageB==pageA:true") {
			t.Errorf("GET %s index 42: rc %d, same page %v; real Xen %s", p, res, bytes.Equal(b, pageA), line)
		}
		mem.Write(frameB, make([]byte, pageSize))
		line = g.next("tmem_op(TMEM_GET_PAGE " + p + " index=42) second time")
		res = r.get(pool, oid, 42, frameB)
		mem.Read(frameB, b)
		nonzero := fmt.Sprint(!bytes.Equal(b, make([]byte, pageSize)))
		if res != parseNum(t, field(t, line, "rc")) || nonzero != field(t, line, "nonzero") {
			t.Errorf("second GET %s: rc %d nonzero=%s; real Xen %s", p, res, nonzero, line)
		}
		g.expect("tmem_op(TMEM_GET_PAGE "+p+" index=99 (never put))", r.get(pool, oid, 99, frameB))
		g.expect("tmem_op(TMEM_FLUSH_PAGE "+p+" index=43)", r.flushPage(pool, oid, 43))
		g.expect("tmem_op(TMEM_FLUSH_PAGE "+p+" index=43) again", r.flushPage(pool, oid, 43))
		g.expect("tmem_op(TMEM_PUT_PAGE "+p+" oid=5,5,5 index=1)", r.put(pool, oid5, 1, frameA))
		g.expect("tmem_op(TMEM_FLUSH_OBJECT "+p+" oid=5,5,5)", r.flushObject(pool, oid5))
		g.expect("tmem_op(TMEM_PUT_PAGE "+p+" index=44) (left in pool)", r.put(pool, oid, 44, frameA))
		g.expectList(r, "after get/flush "+strings.Replace(p, "=", " ", 1))
	}
	// A frame that is not dom0's: the copy faults after the page was
	// allocated (into the existing object of the persistent pool, which is
	// what the transcript's counters show: Cf 1, px 1, Pm 3).
	g.expect("tmem_op(TMEM_PUT_PAGE cmfn=0x7fffffff (not ours))", r.put(1, oid, 45, 0x7fffffff))
	g.expect("TMEM QUERY_FREEABLE_MB (after puts)", r.freeable())

	// (d) freeze / thaw / destroy / flush / freeable.
	g.expect("TMEM FREEZE cli_id=0", r.tmemCtl(hypercall.TMEMC_FREEZE, 0, 0, 0, 0))
	clientInfo("dom0 frozen", 0)
	g.expectList(r, "frozen")
	// A new page into a new object of the persistent pool (pt counts it,
	// px does not), and a flush of a page that is not there.
	g.expect("tmem_op(TMEM_PUT_PAGE) while frozen", r.put(1, [3]uint64{7, 7, 7}, 0, frameA))
	g.expect("tmem_op(TMEM_FLUSH_PAGE) while frozen", r.flushPage(1, oid, 43))
	g.expect("tmem_op(TMEM_NEW_POOL) while frozen", r.newPool(0x01000000, 0, 0))
	g.expect("tmem_op(TMEM_DESTROY_POOL 2)", r.destroyPool(2))
	g.expect("TMEM THAW cli_id=0", r.tmemCtl(hypercall.TMEMC_THAW, 0, 0, 0, 0))
	clientInfo("dom0 thawed", 0)
	g.expect("TMEM FREEZE cli_id=ALL", r.tmemCtl(hypercall.TMEMC_FREEZE, allClients, 0, 0, 0))
	clientInfo("dom0 after freeze ALL", 0)
	g.expect("TMEM DESTROY cli_id=0", r.tmemCtl(hypercall.TMEMC_DESTROY, 0, 0, 0, 0))
	clientInfo("dom0 after sysctl DESTROY", 0)
	g.expectList(r, "after sysctl DESTROY")
	g.expect("TMEM FREEZE cli_id=7 (no such client)", r.tmemCtl(hypercall.TMEMC_FREEZE, 7, 0, 0, 0))
	g.expect("TMEM QUERY_FREEABLE_MB", r.freeable())
	g.expect("TMEM FLUSH cli_id=0 arg=1024kb", r.flush(0, 1024))
	g.expect("TMEM FLUSH cli_id=ALL arg=1024kb", r.flush(allClients, 1024))
	g.expect("TMEM sysctl unknown cmd 77", r.tmemCtl(77, 0, 0, 0, 0))
	g.expect("TMEM sysctl LIST with pad=1", r.sysctl(hypercall.XEN_SYSCTL_tmem_op, r.iface, func(u []byte) {
		le32(u, 0, hypercall.TMEMC_LIST)
		le32(u, 8, allClients)
		le32(u, 12, 16384)
		le32(u, 20, 1)
		binary.LittleEndian.PutUint64(u[48:], r.big.Addr())
	}))
	g.expect("tmem_op(TMEM_DESTROY_POOL 0)", r.destroyPool(0))
	g.expect("tmem_op(TMEM_DESTROY_POOL 1)", r.destroyPool(1))
	g.expect("tmem_op(TMEM_DESTROY_POOL 5 (uncreated))", r.destroyPool(5))
	g.expectList(r, "final all short")
	g.expectList(r, "final all long")
	clientInfo("dom0 final", 0)
}
