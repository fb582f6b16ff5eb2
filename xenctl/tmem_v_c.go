package xenctl

import (
	"fmt"

	"github.com/xentmem/xentmem/hypercall"
)

// Generation C: Xen 4.8 (xen-tmem-abi.md §6).
//
// The sysctl of generation B with its fields renamed len@20 and arg@24, and
// sub-ops 5/6/7 re-numbered GET_CLIENT_INFO / SET_CLIENT_INFO / GET_POOLS,
// which pass 20-byte struct xen_tmem_client and 32-byte struct
// xen_tmem_pool_info records through buf@56. SET_WEIGHT, SET_CAP,
// SET_COMPRESS and SAVE_GET_VERSION … SAVE_GET_POOL_UUID are gone. Every
// sub-op puts its buffer length in len and its one value in arg (argsCD).
// TMEM_AUTH and TMEM_RESTORE_NEW are still tmem_op commands 101/102.

type abiC struct{}

const (
	tmemClientSize = 20 // sizeof(struct xen_tmem_client)
	tmemPoolSize   = 32 // sizeof(struct xen_tmem_pool_info)
	tmemMaxPools   = 16 // MAX_POOLS_PER_DOMAIN
)

func (abiC) generation() Generation { return GenC }
func (abiC) ctrlCall() (hypercall.Op, int, int) {
	return hypercall.OpSysctl, scratchSysctl, sysctlSize
}
func (abiC) subop(op ctrlOp) (uint32, bool) { return subopC(op) }
func (abiC) encodeCtrl(arg []byte, iface uint32, r ctrlReq) error {
	return encodeCDCtrl(GenC, arg, iface, r)
}
func (abiC) tmemOpSize() int                           { return tmemOpSize }
func (abiC) encodeCreat(arg []byte, r creatReq) error  { return encodeTmemOpCreat(arg, r) }
func (abiC) encodeGen(arg []byte, r genReq) error      { return encodeTmemOpGen(arg, r) }
func (abiC) specVersion() uint32                       { return hypercall.TMEM_SPEC_VERSION }
func (abiC) handleSize() int                           { return tmemHandleSize }
func (abiC) decodeHandle(b []byte) (PageHandle, error) { return decodeTmemHandle(b) }

// subopC numbers op as XEN_SYSCTL_TMEM_OP_* of Xen 4.8 (§6.4).
func subopC(op ctrlOp) (uint32, bool) {
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
	case ctlGetClientInfo:
		return hypercall.XEN_SYSCTL_TMEM_OP_GET_CLIENT_INFO, true
	case ctlSetClientInfo:
		return hypercall.XEN_SYSCTL_TMEM_OP_SET_CLIENT_INFO, true
	case ctlGetPools:
		return hypercall.XEN_SYSCTL_TMEM_OP_GET_POOLS, true
	case ctlFreeable:
		return hypercall.TMEMC_QUERY_FREEABLE_MB, true
	case ctlSaveBegin:
		return hypercall.TMEMC_SAVE_BEGIN, true
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

// encodeCDCtrl writes r as a struct xen_sysctl carrying a generation C or D
// xen_sysctl_tmem_op: len = the buffer size, arg = the value (§6.1, §6.4).
func encodeCDCtrl(g Generation, arg []byte, iface uint32, r ctrlReq) error {
	cmd, ok := subopC(r.op)
	if g == GenD {
		cmd, ok = subopD(r.op)
	}
	if !ok {
		return errNoSubop(g, r.op)
	}
	return encodeSysctlTmem(arg, iface, hypercall.SysctlTmemOp{
		Cmd: cmd, PoolID: r.pool, CliID: uint32(r.cli), Len: r.size, Arg: r.val, OID: r.oid, Buf: r.buf,
	})
}

// Flag bits of struct xen_tmem_client (§6.2).
const (
	clientFrozen    = 1 << 0
	clientCompress  = 1 << 1
	clientMigrating = 1 << 2
)

// decodeClientRecord reads a 20-byte struct xen_tmem_client.
func decodeClientRecord(b []byte) (ClientInfo, error) {
	if len(b) < tmemClientSize {
		return ClientInfo{}, fmt.Errorf("%w: %d-byte xen_tmem_client, want %d", ErrBadInput, len(b), tmemClientSize)
	}
	c, err := hypercall.ViewBytes[hypercall.TmemClient](b, 0)
	if err != nil {
		return ClientInfo{}, err
	}
	return ClientInfo{
		Version:   c.Version,
		MaxPools:  int(c.MaxPools),
		Pools:     int(c.NrPools),
		Frozen:    c.Flags&clientFrozen != 0,
		Compress:  c.Flags&clientCompress != 0,
		Migrating: c.Flags&clientMigrating != 0,
		Weight:    c.Weight,
	}, nil
}

// encodeClientRecord writes c as a 20-byte struct xen_tmem_client, the
// record SET_CLIENT_INFO reads (Xen applies only weight and the compress
// bit, and requires version 1 and maxpools ≤ 16). Cap has no field.
func encodeClientRecord(b []byte, c ClientInfo) error {
	r, err := image[hypercall.TmemClient](b)
	if err != nil {
		return err
	}
	r.Version = c.Version
	r.MaxPools = uint32(c.MaxPools)
	r.NrPools = uint32(c.Pools)
	r.Flags = b2u(c.Frozen)*clientFrozen | b2u(c.Compress)*clientCompress | b2u(c.Migrating)*clientMigrating
	r.Weight = c.Weight
	return nil
}

// decodePoolRecords reads n 32-byte struct xen_tmem_pool_info records.
func decodePoolRecords(b []byte, n int) ([]PoolInfo, error) {
	if n < 0 || n > tmemMaxPools || len(b) < n*tmemPoolSize {
		return nil, fmt.Errorf("%w: %d pool records in %d bytes (at most %d)", ErrBadInput, n, len(b), tmemMaxPools)
	}
	out := make([]PoolInfo, n)
	for i := range out {
		p, err := hypercall.ViewBytes[hypercall.TmemPoolInfo](b, i*tmemPoolSize)
		if err != nil {
			return nil, err
		}
		out[i] = PoolInfo{ID: int(p.ID), Flags: PoolFlags(p.Flags), Pages: p.NPages, UUID: UUID{Lo: p.UUID[0], Hi: p.UUID[1]}}
	}
	return out, nil
}

// encodePoolRecord writes one 32-byte struct xen_tmem_pool_info with
// n_pages 0, as SET_POOLS and SET_AUTH require: flags@0, id@4, uuid[0]@16,
// uuid[1]@24.
func encodePoolRecord(b []byte, flags PoolFlags, id uint32, uuid UUID) error {
	p, err := image[hypercall.TmemPoolInfo](b)
	if err != nil {
		return err
	}
	p.Flags = uint32(flags)
	p.ID = id
	p.UUID = [2]uint64{uuid.Lo, uuid.Hi}
	return nil
}
