package xensim

import (
	"encoding/binary"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/hypercall/hypercalltest"
)

// Control generations B, C and D: struct xen_sysctl_tmem_op inside
// XEN_SYSCTL_tmem_op (4.6–4.12). The sysctl path does not look at whether
// tmem is enabled: with tmem off it answers from empty state.

// tmemSysctl serves XEN_SYSCTL_tmem_op; u is the sysctl union.
func (s *Sim) tmemSysctl(u []byte, mem *hypercalltest.Memory) int {
	op, _ := hypercall.ViewBytes[hypercall.SysctlTmemOp](u, 0)
	if op.Pad != 0 {
		return -errEINVAL
	}
	t := s.tm
	cli := uint16(op.CliID)
	if s.rel.gen == genB {
		return t.controlAB(op.Cmd, cli, op.Len, op.Arg, op.OID, op.Buf, op.PoolID, mem)
	}
	switch op.Cmd {
	case hypercall.TMEMC_THAW, hypercall.TMEMC_DESTROY:
		return t.freezePools(cli, false)
	case hypercall.TMEMC_FREEZE:
		return t.freezePools(cli, true)
	case hypercall.TMEMC_FLUSH:
		return t.flushMem(cli, op.Arg)
	case hypercall.TMEMC_LIST:
		return t.list(cli, mem, op.Buf, op.Len, op.Arg != 0)
	case hypercall.XEN_SYSCTL_TMEM_OP_SET_CLIENT_INFO:
		return t.setClientInfo(cli, mem, op.Buf)
	case hypercall.TMEMC_QUERY_FREEABLE_MB:
		return t.freeableMB()
	case hypercall.XEN_SYSCTL_TMEM_OP_GET_CLIENT_INFO:
		return t.getClientInfo(cli, mem, op.Buf)
	case hypercall.XEN_SYSCTL_TMEM_OP_GET_POOLS:
		return t.getPools(cli, mem, op.Buf, op.Len)
	case hypercall.XEN_SYSCTL_TMEM_OP_SET_POOLS:
		if s.rel.gen == genD {
			return t.setPools(cli, mem, op.Buf, op.Len, false)
		}
	case hypercall.XEN_SYSCTL_TMEM_OP_SET_AUTH:
		if s.rel.gen == genD {
			return t.setPools(cli, mem, op.Buf, op.Len, true)
		}
	case hypercall.TMEMC_SAVE_BEGIN:
		if t.saveBegin(cli, op.Arg != 0) {
			return 0
		}
		return -errENOENT
	case hypercall.TMEMC_RESTORE_BEGIN:
		if t.clientOf(cli) != nil {
			return -errEEXIST
		}
		if t.clientCreate(cli) == nil {
			return -errENOMEM
		}
		return 0
	case hypercall.TMEMC_SAVE_END:
		c := t.clientOf(cli)
		if c == nil {
			return -errENOENT
		}
		t.saveEnd(c)
		return 0
	case hypercall.TMEMC_SAVE_GET_NEXT_PAGE:
		return t.saveNextPage(cli, op.PoolID, mem, op.Buf, op.Len)
	case hypercall.TMEMC_SAVE_GET_NEXT_INV:
		return t.saveNextInv(cli, mem, op.Buf, op.Len)
	case hypercall.TMEMC_RESTORE_PUT_PAGE:
		return t.restorePutPage(cli, op.PoolID, op.OID, op.Arg, mem, op.Buf, op.Len)
	case hypercall.TMEMC_RESTORE_FLUSH_PAGE:
		return t.restoreFlushPage(cli, op.PoolID, op.OID, op.Arg)
	}
	return -1
}

func putUint64(b []byte, v uint64) { binary.LittleEndian.PutUint64(b, v) }
