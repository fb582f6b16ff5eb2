package xenctl

import (
	"fmt"

	"github.com/xentmem/xentmem/hypercall"
)

// Generation A1: Xen 4.0.2 … 4.5 (xen-tmem-abi.md §3.3, §4).
//
// Control goes through tmem_op cmd TMEM_CONTROL (hypercall 38) in the
// 56-byte struct tmem_op: subop@8, cli_id@12, arg1@16, arg2@20, oid[3]@24,
// buf@48, numbered and filled as in generation A0 (subopA, argsA). This
// file also holds the 56-byte u.creat/u.gen encoders and the 32-byte
// struct tmem_handle decoder, which generations B, C and D share.

type abiA1 struct{}

func (abiA1) generation() Generation { return GenA1 }
func (abiA1) ctrlCall() (hypercall.Op, int, int) {
	return hypercall.OpTmem, scratchTmemOp, tmemOpSize
}
func (abiA1) subop(op ctrlOp) (uint32, bool)                   { return subopA(op) }
func (abiA1) encodeCtrl(arg []byte, _ uint32, r ctrlReq) error { return encodeA1Ctrl(arg, r) }
func (abiA1) tmemOpSize() int                                  { return tmemOpSize }
func (abiA1) encodeCreat(arg []byte, r creatReq) error         { return encodeTmemOpCreat(arg, r) }
func (abiA1) encodeGen(arg []byte, r genReq) error             { return encodeTmemOpGen(arg, r) }
func (abiA1) specVersion() uint32                              { return hypercall.TMEM_SPEC_VERSION }
func (abiA1) handleSize() int                                  { return tmemHandleSize }
func (abiA1) decodeHandle(b []byte) (PageHandle, error)        { return decodeTmemHandle(b) }

// encodeA1Ctrl writes r as a 56-byte tmem_op TMEM_CONTROL request.
func encodeA1Ctrl(arg []byte, r ctrlReq) error {
	subop, ok := subopA(r.op)
	if !ok {
		return errNoSubop(GenA1, r.op)
	}
	op, err := image[hypercall.TmemOpCtrl](arg)
	if err != nil {
		return err
	}
	op.Cmd = hypercall.TMEM_CONTROL
	op.PoolID = r.pool
	op.Subop = subop
	op.CliID = uint32(r.cli)
	op.Arg1, op.Arg2 = argsA(r)
	op.OID = r.oid
	op.Buf = r.buf
	return nil
}

// encodeTmemOpCreat writes a 56-byte tmem_op read as u.creat: uuid[0]@8,
// uuid[1]@16, flags@24, arg1@28 (generations A1–D).
func encodeTmemOpCreat(arg []byte, r creatReq) error {
	op, err := image[hypercall.TmemOpCreat](arg)
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

// encodeTmemOpGen writes a 56-byte tmem_op read as u.gen: oid[3]@8,
// index@32, cmfn@48 (generations A1–D).
func encodeTmemOpGen(arg []byte, r genReq) error {
	op, err := image[hypercall.TmemOpGen](arg)
	if err != nil {
		return err
	}
	op.Cmd = r.cmd
	op.PoolID = r.pool
	op.OID = r.oid
	op.Index = r.index
	op.CMFN = r.frame
	return nil
}

// decodeTmemHandle reads the 32-byte struct tmem_handle (4.0.2–4.12).
func decodeTmemHandle(b []byte) (PageHandle, error) {
	if len(b) < tmemHandleSize {
		return PageHandle{}, fmt.Errorf("%w: %d-byte tmem handle, want %d", ErrBadInput, len(b), tmemHandleSize)
	}
	h, err := hypercall.ViewBytes[hypercall.TmemHandle](b, 0)
	if err != nil {
		return PageHandle{}, err
	}
	return PageHandle{Pool: h.PoolID, Index: h.Index, OID: h.OID}, nil
}
