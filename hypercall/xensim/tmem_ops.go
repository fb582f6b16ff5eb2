package xensim

import (
	"encoding/binary"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/hypercall/hypercalltest"
)

// tmemOpArgs is struct tmem_op decoded in the release's layout (40 bytes
// on 4.0.0/4.0.1, 56 bytes afterwards), with every union view filled in.
type tmemOpArgs struct {
	cmd    uint32
	poolID int32
	// u.creat (u.new on A0)
	uuid  [2]uint64
	flags uint32
	arg1  uint32
	// u.ctrl
	subop, cliID, ctrlArg1, ctrlArg2 uint32
	ctrlOID                          [3]uint64
	buf                              uint64
	// u.gen
	oid                            [3]uint64
	index, tmemOff, pfnOff, length uint32
	cmfn                           uint64
}

func decodeTmemOp(b []byte, a0 bool, op *tmemOpArgs) {
	le := binary.LittleEndian
	op.cmd = le.Uint32(b[0:])
	op.poolID = int32(le.Uint32(b[4:]))
	op.uuid[0], op.uuid[1] = le.Uint64(b[8:]), le.Uint64(b[16:])
	op.flags, op.arg1 = le.Uint32(b[24:]), le.Uint32(b[28:])
	op.subop, op.cliID = le.Uint32(b[8:]), le.Uint32(b[12:])
	op.ctrlArg1, op.ctrlArg2 = le.Uint32(b[16:]), le.Uint32(b[20:])
	if a0 {
		op.ctrlOID = [3]uint64{le.Uint64(b[24:])}
		op.buf = le.Uint64(b[32:])
		op.oid = [3]uint64{le.Uint64(b[8:])}
		op.index, op.tmemOff = le.Uint32(b[16:]), le.Uint32(b[20:])
		op.pfnOff, op.length = le.Uint32(b[24:]), le.Uint32(b[28:])
		op.cmfn = le.Uint64(b[32:])
		return
	}
	op.ctrlOID = [3]uint64{le.Uint64(b[24:]), le.Uint64(b[32:]), le.Uint64(b[40:])}
	op.buf = le.Uint64(b[48:])
	op.oid = [3]uint64{le.Uint64(b[8:]), le.Uint64(b[16:]), le.Uint64(b[24:])}
	op.index, op.tmemOff = le.Uint32(b[32:]), le.Uint32(b[36:])
	op.pfnOff, op.length = le.Uint32(b[40:]), le.Uint32(b[44:])
	op.cmfn = le.Uint64(b[48:])
}

// tmemOp serves __HYPERVISOR_tmem_op (do_tmem_op).
func (s *Sim) tmemOp(d *domain, addr uint64, mem *hypercalltest.Memory) int64 {
	if !s.rel.tmemABI() || s.cfg.Tmem == TmemNotBuilt {
		return -int64(errENOSYS)
	}
	t := s.tm
	if !t.on {
		return -int64(errENODEV)
	}
	t.stats.totalOps++
	if d.tmem != nil && d.dying {
		t.stats.erroredOps++
		return -int64(errENODEV)
	}
	size := 56
	if s.rel.gen == genA0 {
		size = 40
	}
	b, err := mem.Bytes(addr, size)
	if err != nil {
		t.stats.erroredOps++
		return -int64(errEFAULT)
	}
	var op tmemOpArgs
	decodeTmemOp(b, s.rel.gen == genA0, &op)
	rc := t.dispatch(d, &op, mem)
	if rc < 0 {
		t.stats.erroredOps++
	}
	return int64(rc)
}

// dispatch is the body of do_tmem_op after the copy-in.
func (t *tmem) dispatch(d *domain, op *tmemOpArgs, mem *hypercalltest.Memory) int {
	rel := t.sim.rel
	switch op.cmd {
	case hypercall.TMEM_CONTROL:
		if rel.gen >= genB {
			return -errEOPNOTSUPP
		}
		if rel.controlNeedsPrivilege() && d.id != 0 {
			return -errEPERM
		}
		return t.controlA(op, mem)
	case hypercall.TMEM_AUTH:
		if rel.atLeast(4, 9) {
			return -errEOPNOTSUPP
		}
		return t.sharedPoolAuth(uint16(op.arg1), op.uuid[0], op.uuid[1], op.flags != 0)
	case hypercall.TMEM_RESTORE_NEW:
		if rel.atLeast(4, 9) {
			return -errEOPNOTSUPP
		}
		cli := int(uint16(op.arg1))
		if cli == allClients {
			cli = -1
		}
		return t.newPool(cli, uint32(op.poolID), op.flags, op.uuid[0], op.uuid[1])
	}
	c := d.tmem
	if c == nil {
		if c = t.clientCreate(d.id); c == nil {
			return -errENOMEM
		}
	}
	switch op.cmd {
	case hypercall.TMEM_NEW_POOL:
		return t.newPool(-1, 0, op.flags, op.uuid[0], op.uuid[1])
	case hypercall.TMEM_DESTROY_POOL:
		start := t.perfStart()
		rc := t.destroyPool(c, op.poolID)
		t.perfEnd(start, perfFlush, c)
		return rc
	}
	if uint32(op.poolID) >= maxPools || c.pools[op.poolID] == nil {
		return -errENODEV
	}
	p := c.pools[op.poolID]
	old := !rel.atLeast(4, 4)
	x := xfer{cmfn: op.cmfn}
	start := t.perfStart()
	switch op.cmd {
	case hypercall.TMEM_PUT_PAGE:
		rc := -errENOMEM
		if t.ensureAvailPages() || old {
			rc = t.doPut(p, op.oid, op.index, &x)
		}
		t.perfEnd(start, pick(rc == 1, perfSuccPut, perfNonSuccPut), c)
		return rc
	case hypercall.TMEM_GET_PAGE:
		rc := t.doGet(p, op.oid, op.index, &x)
		t.perfEnd(start, pick(rc == 1, perfSuccGet, perfNonSuccGet), c)
		return rc
	case hypercall.TMEM_FLUSH_PAGE:
		rc := t.doFlushPage(p, op.oid, op.index)
		t.perfEnd(start, perfFlush, c)
		return rc
	case hypercall.TMEM_FLUSH_OBJECT:
		rc := t.doFlushObject(p, op.oid)
		t.perfEnd(start, perfFlushObj, c)
		return rc
	}
	if !old {
		return -errENOSYS
	}
	switch op.cmd {
	case hypercall.TMEM_NEW_PAGE:
		t.ensureAvailPages()
		x.partial = true
		return t.doPut(p, op.oid, op.index, &x)
	case hypercall.TMEM_READ:
		x.partial, x.tmemOff, x.pfnOff, x.length = true, op.tmemOff, op.pfnOff, op.length
		return t.doGet(p, op.oid, op.index, &x)
	case hypercall.TMEM_WRITE:
		x.partial, x.tmemOff, x.pfnOff, x.length = true, op.tmemOff, op.pfnOff, op.length
		return t.doPut(p, op.oid, op.index, &x)
	}
	// TMEM_XCHG and unknown commands: 0 up to 4.3.
	return 0
}

func pick(c bool, a, b int) int {
	if c {
		return a
	}
	return b
}

// perfStart and perfEnd time an operation for the 4.0–4.3 cycle counters.
func (t *tmem) perfStart() int64 {
	if !t.sim.perfOn() {
		return 0
	}
	return t.sim.clock().UnixNano()
}

func (t *tmem) perfEnd(start int64, counter int, c *client) {
	if !t.sim.perfOn() {
		return
	}
	cyc := t.perf.add(counter, t.sim.cycles(timeSince(t.sim.clock().UnixNano(), start)))
	if c != nil {
		c.totalCycles += cyc
	}
}
