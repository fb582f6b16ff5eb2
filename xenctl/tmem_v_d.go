package xenctl

import "github.com/xentmem/xentmem/hypercall"

// Generation D: Xen 4.9 … 4.12 (xen-tmem-abi.md §6).
//
// Generation C's sysctl plus SET_POOLS (9) and SET_AUTH (11, SAVE_GET_VERSION's
// old number), both taking struct xen_tmem_pool_info records. tmem_op
// commands 101 (TMEM_AUTH) and 102 (TMEM_RESTORE_NEW) now fail with
// -EOPNOTSUPP, so shared-pool authorisation and pool creation for another
// domain go through these two sub-ops. SET_AUTH for all clients fails with
// -ENOMEM (Xen tries to create a client for domain 0xFFFF).

type abiD struct{}

func (abiD) generation() Generation { return GenD }
func (abiD) ctrlCall() (hypercall.Op, int, int) {
	return hypercall.OpSysctl, scratchSysctl, sysctlSize
}
func (abiD) subop(op ctrlOp) (uint32, bool) { return subopD(op) }
func (abiD) encodeCtrl(arg []byte, iface uint32, r ctrlReq) error {
	return encodeCDCtrl(GenD, arg, iface, r)
}
func (abiD) tmemOpSize() int                           { return tmemOpSize }
func (abiD) encodeCreat(arg []byte, r creatReq) error  { return encodeTmemOpCreat(arg, r) }
func (abiD) encodeGen(arg []byte, r genReq) error      { return encodeTmemOpGen(arg, r) }
func (abiD) specVersion() uint32                       { return hypercall.TMEM_SPEC_VERSION }
func (abiD) handleSize() int                           { return tmemHandleSize }
func (abiD) decodeHandle(b []byte) (PageHandle, error) { return decodeTmemHandle(b) }

// subopD numbers op as XEN_SYSCTL_TMEM_OP_* of Xen 4.9–4.12 (§6.4).
func subopD(op ctrlOp) (uint32, bool) {
	switch op {
	case ctlSetPools:
		return hypercall.XEN_SYSCTL_TMEM_OP_SET_POOLS, true
	case ctlSetAuth:
		return hypercall.XEN_SYSCTL_TMEM_OP_SET_AUTH, true
	}
	return subopC(op)
}

// encodeAuthRecord writes the one SET_AUTH record: a struct
// xen_tmem_pool_info whose flags are the auth bit (bit 2, 0x4) to authorise
// or 0 to revoke, with the uuid, id 0 and n_pages 0 (§6.6).
func encodeAuthRecord(b []byte, uuid UUID, authorise bool) error {
	var flags PoolFlags
	if authorise {
		flags = PoolAuth
	}
	return encodePoolRecord(b, flags, 0, uuid)
}
