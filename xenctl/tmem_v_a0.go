package xenctl

import (
	"encoding/binary"
	"fmt"

	"github.com/xentmem/xentmem/hypercall"
)

// Generation A0: Xen 4.0.0 and 4.0.1 (xen-tmem-abi.md §3.2, §4).
//
// Control goes through tmem_op cmd TMEM_CONTROL (hypercall 38) in the
// 40-byte struct tmem_op: subop@8, cli_id@12, arg1@16, arg2@20, arg3 (the
// 64-bit object id)@24, buf@32. Page operations use u.gen with one 64-bit
// object id; NEW_POOL flags carry spec version 0; struct tmem_handle is 16
// bytes. pool_id is sent as 0 except by the SAVE/RESTORE sub-ops (§6.6:
// unlisted bytes are 0).
//
// The sub-op numbering of §4.2 and the use of arg1/arg2 (subopA, argsA)
// are shared by generations A0, A1 and B.

type abiA0 struct{}

const (
	tmemOpA0Size     = 40 // sizeof(struct tmem_op), 4.0.0–4.0.1
	tmemOpSize       = 56 // sizeof(struct tmem_op), 4.0.2–4.12
	tmemHandleA0Size = 16
	tmemHandleSize   = 32
)

func (abiA0) generation() Generation { return GenA0 }
func (abiA0) ctrlCall() (hypercall.Op, int, int) {
	return hypercall.OpTmem, scratchTmemOp, tmemOpA0Size
}
func (abiA0) subop(op ctrlOp) (uint32, bool)                   { return subopA(op) }
func (abiA0) encodeCtrl(arg []byte, _ uint32, r ctrlReq) error { return encodeA0Ctrl(arg, r) }
func (abiA0) tmemOpSize() int                                  { return tmemOpA0Size }
func (abiA0) encodeCreat(arg []byte, r creatReq) error         { return encodeA0Creat(arg, r) }
func (abiA0) encodeGen(arg []byte, r genReq) error             { return encodeA0Gen(arg, r) }
func (abiA0) specVersion() uint32                              { return 0 }
func (abiA0) handleSize() int                                  { return tmemHandleA0Size }
func (abiA0) decodeHandle(b []byte) (PageHandle, error)        { return decodeA0Handle(b) }

// subopA numbers op as TMEMC_* (generations A0, A1) and
// XEN_SYSCTL_TMEM_OP_* of Xen 4.6–4.7 (generation B) do (§4.2, §5.1).
func subopA(op ctrlOp) (uint32, bool) {
	switch op {
	case ctlThaw:
		return hypercall.TMEMC_THAW, true
	case ctlFreeze:
		return hypercall.TMEMC_FREEZE, true
	case ctlFlush:
		return hypercall.TMEMC_FLUSH, true
	case ctlDestroy:
		return hypercall.TMEMC_DESTROY, true
	case ctlList:
		return hypercall.TMEMC_LIST, true
	case ctlSetWeight:
		return hypercall.TMEMC_SET_WEIGHT, true
	case ctlSetCap:
		return hypercall.TMEMC_SET_CAP, true
	case ctlSetCompress:
		return hypercall.TMEMC_SET_COMPRESS, true
	case ctlFreeable:
		return hypercall.TMEMC_QUERY_FREEABLE_MB, true
	case ctlSaveBegin:
		return hypercall.TMEMC_SAVE_BEGIN, true
	case ctlGetPoolFlags:
		return hypercall.TMEMC_SAVE_GET_POOL_FLAGS, true
	case ctlGetPoolNPages:
		return hypercall.TMEMC_SAVE_GET_POOL_NPAGES, true
	case ctlGetPoolUUID:
		return hypercall.TMEMC_SAVE_GET_POOL_UUID, true
	case ctlSaveNextPage:
		return hypercall.TMEMC_SAVE_GET_NEXT_PAGE, true
	case ctlSaveNextInv:
		return hypercall.TMEMC_SAVE_GET_NEXT_INV, true
	case ctlSaveEnd:
		return hypercall.TMEMC_SAVE_END, true
	case ctlRestoreBegin:
		return hypercall.TMEMC_RESTORE_BEGIN, true
	case ctlRestorePutPage:
		return hypercall.TMEMC_RESTORE_PUT_PAGE, true
	case ctlRestoreFlushPage:
		return hypercall.TMEMC_RESTORE_FLUSH_PAGE, true
	}
	return 0, false
}

// argsA places a request's value and buffer size in arg1 and arg2 as
// generations A and B do (§4.2): LIST has the length in arg1 and the long
// flag in arg2; RESTORE_PUT_PAGE the size in arg1 and the index in arg2;
// RESTORE_FLUSH_PAGE the index in arg2; the buffer sub-ops (SAVE_GET_NEXT_PAGE,
// SAVE_GET_NEXT_INV, SAVE_GET_POOL_UUID) the size in arg1, as libxc does;
// every other sub-op its one value in arg1.
func argsA(r ctrlReq) (arg1, arg2 uint32) {
	switch r.op {
	case ctlList, ctlRestorePutPage:
		return r.size, r.val
	case ctlRestoreFlushPage:
		return 0, r.val
	case ctlSaveNextPage, ctlSaveNextInv, ctlGetPoolUUID:
		return r.size, 0
	}
	return r.val, 0
}

// encodeA0Ctrl writes r as a 40-byte tmem_op TMEM_CONTROL request.
func encodeA0Ctrl(arg []byte, r ctrlReq) error {
	subop, ok := subopA(r.op)
	if !ok {
		return errNoSubop(GenA0, r.op)
	}
	if err := checkA0OID(r.oid); err != nil {
		return err
	}
	op, err := image[hypercall.TmemOpA0Ctrl](arg)
	if err != nil {
		return err
	}
	op.Cmd = hypercall.TMEM_CONTROL
	op.PoolID = r.pool
	op.Subop = subop
	op.CliID = uint32(r.cli)
	op.Arg1, op.Arg2 = argsA(r)
	op.Arg3 = r.oid[0]
	op.Buf = r.buf
	return nil
}

// encodeA0Creat writes a 40-byte tmem_op read as u.new.
func encodeA0Creat(arg []byte, r creatReq) error {
	op, err := image[hypercall.TmemOpA0New](arg)
	if err != nil {
		return err
	}
	op.Cmd = r.cmd
	op.PoolID = r.pool
	op.UUID = [2]uint64{r.uuid.Lo, r.uuid.Hi}
	op.Flags = r.flags
	op.Arg1 = r.arg1
	return nil
}

// encodeA0Gen writes a 40-byte tmem_op read as u.gen.
func encodeA0Gen(arg []byte, r genReq) error {
	if err := checkA0OID(r.oid); err != nil {
		return err
	}
	op, err := image[hypercall.TmemOpA0Gen](arg)
	if err != nil {
		return err
	}
	op.Cmd = r.cmd
	op.PoolID = r.pool
	op.Object = r.oid[0]
	op.Index = r.index
	op.CMFN = r.frame
	return nil
}

// decodeA0Handle reads the 16-byte struct tmem_handle of 4.0.0/4.0.1.
func decodeA0Handle(b []byte) (PageHandle, error) {
	if len(b) < tmemHandleA0Size {
		return PageHandle{}, fmt.Errorf("%w: %d-byte tmem handle, want %d", ErrBadInput, len(b), tmemHandleA0Size)
	}
	h, err := hypercall.ViewBytes[hypercall.TmemHandleA0](b, 0)
	if err != nil {
		return PageHandle{}, err
	}
	return PageHandle{Pool: h.PoolID, Index: h.Index, OID: [3]uint64{h.OID}}, nil
}

// checkA0OID refuses object ids wider than the 64 bits of 4.0.0/4.0.1.
func checkA0OID(oid [3]uint64) error {
	if oid[1] != 0 || oid[2] != 0 {
		return fmt.Errorf("%w: object id %#x:%#x:%#x does not fit the 64-bit object id of Xen 4.0.0–4.0.1 (192-bit ids: 4.0.2–4.12)", ErrBadInput, oid[0], oid[1], oid[2])
	}
	return nil
}

func errNoSubop(g Generation, op ctrlOp) error {
	return fmt.Errorf("%w: control operation %d has no sub-op in generation %s", ErrNotSupported, op, g)
}

// decodePoolUUID reads the 16 bytes SAVE_GET_POOL_UUID writes: uuid[0],
// then uuid[1] (generations A and B).
func decodePoolUUID(b []byte) (UUID, error) {
	if len(b) < 16 {
		return UUID{}, fmt.Errorf("%w: %d-byte pool uuid, want 16", ErrBadInput, len(b))
	}
	return UUID{Lo: binary.NativeEndian.Uint64(b[0:8]), Hi: binary.NativeEndian.Uint64(b[8:16])}, nil
}
