package xenctl

import (
	"fmt"

	"github.com/xentmem/xentmem/hypercall"
)

// Generation B: Xen 4.6 and 4.7 (xen-tmem-abi.md §5).
//
// Control moved to sysctl XEN_SYSCTL_tmem_op (hypercall 35): the 136-byte
// struct xen_sysctl with cmd 24 and the interface version, and at offset 8
// struct xen_sysctl_tmem_op: cmd@8, pool_id@12, cli_id@16, arg1@20,
// arg2@24, pad@28 (0), oid@32, buf@56 (§6.5). Sub-op numbers and the use of
// arg1/arg2 are generation A's (subopA, argsA). TMEM_AUTH and
// TMEM_RESTORE_NEW are still tmem_op commands 101/102 (hypercall 38), and
// page operations keep the 56-byte tmem_op.

type abiB struct{}

const sysctlSize = 136 // sizeof(struct xen_sysctl)

func (abiB) generation() Generation { return GenB }
func (abiB) ctrlCall() (hypercall.Op, int, int) {
	return hypercall.OpSysctl, scratchSysctl, sysctlSize
}
func (abiB) subop(op ctrlOp) (uint32, bool)                       { return subopA(op) }
func (abiB) encodeCtrl(arg []byte, iface uint32, r ctrlReq) error { return encodeBCtrl(arg, iface, r) }
func (abiB) tmemOpSize() int                                      { return tmemOpSize }
func (abiB) encodeCreat(arg []byte, r creatReq) error             { return encodeTmemOpCreat(arg, r) }
func (abiB) encodeGen(arg []byte, r genReq) error                 { return encodeTmemOpGen(arg, r) }
func (abiB) specVersion() uint32                                  { return hypercall.TMEM_SPEC_VERSION }
func (abiB) handleSize() int                                      { return tmemHandleSize }
func (abiB) decodeHandle(b []byte) (PageHandle, error)            { return decodeTmemHandle(b) }

// encodeBCtrl writes r as a struct xen_sysctl carrying a generation-B
// xen_sysctl_tmem_op.
func encodeBCtrl(arg []byte, iface uint32, r ctrlReq) error {
	cmd, ok := subopA(r.op)
	if !ok {
		return errNoSubop(GenB, r.op)
	}
	arg1, arg2 := argsA(r)
	return encodeSysctlTmem(arg, iface, hypercall.SysctlTmemOp{
		Cmd: cmd, PoolID: r.pool, CliID: uint32(r.cli), Len: arg1, Arg: arg2, OID: r.oid, Buf: r.buf,
	})
}

// encodeSysctlTmem writes the whole 136-byte struct xen_sysctl: cmd
// XEN_SYSCTL_tmem_op, the interface version, t at offset 8 (its pad forced
// to 0) and zeros in the rest of the union (generations B, C, D).
func encodeSysctlTmem(arg []byte, iface uint32, t hypercall.SysctlTmemOp) error {
	s, err := image[hypercall.Sysctl](arg)
	if err != nil {
		return err
	}
	s.Cmd = hypercall.XEN_SYSCTL_tmem_op
	s.InterfaceVersion = iface
	op, err := hypercall.ViewBytes[hypercall.SysctlTmemOp](arg, hypercall.SysctlUnionOffset)
	if err != nil {
		return fmt.Errorf("xen_sysctl_tmem_op: %w", err)
	}
	*op = t
	op.Pad = 0
	return nil
}
