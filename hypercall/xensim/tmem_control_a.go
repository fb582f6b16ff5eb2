package xensim

import (
	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/hypercall/hypercalltest"
)

// Control generations A (TMEM_CONTROL through tmem_op, 4.0–4.5) and B
// (sysctl 24 with arg1/arg2, 4.6–4.7) share their sub-op numbers and
// results (xen-tmem-abi.md §4.2, §5).

// controlA decodes TMEM_CONTROL's u.ctrl.
func (t *tmem) controlA(op *tmemOpArgs, mem *hypercalltest.Memory) int {
	return t.controlAB(op.subop, uint16(op.cliID), op.ctrlArg1, op.ctrlArg2, op.ctrlOID, op.buf, op.poolID, mem)
}

// controlAB runs one generation A/B sub-op. cli has been narrowed to a
// domid_t, so 0xFFFF in the low 16 bits means every client.
func (t *tmem) controlAB(subop uint32, cli uint16, arg1, arg2 uint32, oid [3]uint64, buf uint64, poolID int32, mem *hypercalltest.Memory) int {
	rel := t.sim.rel
	switch subop {
	case hypercall.TMEMC_THAW, hypercall.TMEMC_DESTROY:
		return t.freezePools(cli, false)
	case hypercall.TMEMC_FREEZE:
		return t.freezePools(cli, true)
	case hypercall.TMEMC_FLUSH:
		return t.flushMem(cli, arg1)
	case hypercall.TMEMC_LIST:
		return t.list(cli, mem, buf, arg1, arg2 != 0)
	case hypercall.TMEMC_SET_WEIGHT, hypercall.TMEMC_SET_CAP, hypercall.TMEMC_SET_COMPRESS:
		return t.setVar(cli, subop, arg1)
	case hypercall.TMEMC_QUERY_FREEABLE_MB:
		return t.freeableMB()
	case hypercall.TMEMC_SAVE_BEGIN:
		if t.saveBegin(cli, arg1 != 0) {
			return 1
		}
		return 0
	case hypercall.TMEMC_RESTORE_BEGIN:
		if t.clientOf(cli) == nil && t.clientCreate(cli) != nil {
			return 1
		}
		return -1
	case hypercall.TMEMC_SAVE_GET_VERSION:
		return int(rel.specVersion())
	case hypercall.TMEMC_SAVE_GET_MAXPOOLS:
		return maxPools
	case hypercall.TMEMC_SAVE_GET_CLIENT_WEIGHT, hypercall.TMEMC_SAVE_GET_CLIENT_CAP:
		c := t.clientOf(cli)
		if c == nil {
			return -1
		}
		v := c.weight
		if subop == hypercall.TMEMC_SAVE_GET_CLIENT_CAP {
			v = c.cap
		}
		if v == ^uint32(0) {
			return -2
		}
		return int(int32(v))
	case hypercall.TMEMC_SAVE_GET_CLIENT_FLAGS:
		c := t.clientOf(cli)
		if c == nil {
			return -1
		}
		f := 0
		if c.compress {
			f |= 1
		}
		if c.wasFrozen {
			f |= 2
		}
		return f
	case hypercall.TMEMC_SAVE_GET_POOL_FLAGS, hypercall.TMEMC_SAVE_GET_POOL_NPAGES, hypercall.TMEMC_SAVE_GET_POOL_UUID:
		return t.savePoolQuery(subop, cli, poolID, mem, buf)
	case hypercall.TMEMC_SAVE_END:
		c := t.clientOf(cli)
		if c == nil {
			return -1
		}
		t.saveEnd(c)
		return 0
	case hypercall.TMEMC_SAVE_GET_NEXT_PAGE:
		return t.saveNextPage(cli, poolID, mem, buf, arg1)
	case hypercall.TMEMC_SAVE_GET_NEXT_INV:
		return t.saveNextInv(cli, mem, buf, arg1)
	case hypercall.TMEMC_RESTORE_PUT_PAGE:
		return t.restorePutPage(cli, poolID, oid, arg2, mem, buf, arg1)
	case hypercall.TMEMC_RESTORE_FLUSH_PAGE:
		return t.restoreFlushPage(cli, poolID, oid, arg2)
	}
	return -1
}

// savePoolQuery serves SAVE_GET_POOL_FLAGS, _NPAGES and _UUID.
func (t *tmem) savePoolQuery(subop uint32, cli uint16, poolID int32, mem *hypercalltest.Memory, buf uint64) int {
	c, p := t.poolOf(cli, poolID)
	if p == nil {
		return -1
	}
	switch subop {
	case hypercall.TMEMC_SAVE_GET_POOL_FLAGS:
		return int(t.poolFlags(p, !t.sim.rel.oldPoolSave()))
	case hypercall.TMEMC_SAVE_GET_POOL_NPAGES:
		return int(p.pgpCount)
	}
	b, err := mem.Bytes(buf, 16)
	if err != nil {
		return -errEFAULT
	}
	putUint64(b[0:], p.uuid[0])
	putUint64(b[8:], p.uuid[1])
	if t.sim.rel.oldPoolSave() {
		// Before 4.1.4 and 4.2.1 the case falls through into SAVE_END.
		t.saveEnd(c)
	}
	return 0
}
