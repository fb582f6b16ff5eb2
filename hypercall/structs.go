package hypercall

import "structs"

// C-layout argument structures (x86_64). Each mirrors its Xen or Linux header
// field by field; padding is explicit. structs_test.go pins every size and
// offset to xen-tmem-abi.md, and (in CI) to Debian's libxen-dev headers.

// PrivcmdHypercall is struct privcmd_hypercall (Linux include/uapi/xen/privcmd.h).
type PrivcmdHypercall struct {
	_   structs.HostLayout
	Op  uint64
	Arg [5]uint64
}

// Sysctl is struct xen_sysctl: a command, the interface version and a
// 128-byte union. Xen copies all 136 bytes in.
type Sysctl struct {
	_                structs.HostLayout
	_                [0]uint64 // C alignment 8 (the union holds uint64_aligned_t)
	Cmd              uint32
	InterfaceVersion uint32
	U                [128]byte
}

// Sysctl sub-commands (XEN_SYSCTL_* in xen/include/public/sysctl.h).
const (
	XEN_SYSCTL_physinfo            = 3
	XEN_SYSCTL_getdomaininfolist   = 6
	XEN_SYSCTL_tmem_op             = 24
	SysctlUnionOffset              = 8 // offset of Sysctl.U
	XEN_SYSCTL_TMEM_OP_ALL_CLIENTS = 0xFFFF
)

// SysctlTmemOp is struct xen_sysctl_tmem_op (Xen 4.6–4.12), at
// [SysctlUnionOffset]. Generation B (4.6, 4.7) names Len and Arg "arg1" and
// "arg2"; the offsets are the same.
type SysctlTmemOp struct {
	_      structs.HostLayout
	Cmd    uint32
	PoolID int32
	CliID  uint32
	Len    uint32 // arg1 in 4.6/4.7
	Arg    uint32 // arg2 in 4.6/4.7
	Pad    uint32 // must be 0, else -EINVAL
	OID    [3]uint64
	Buf    uint64 // guest handle: buf, client or pool, by Cmd
}

// SysctlGetDomainInfoList is struct xen_sysctl_getdomaininfolist.
type SysctlGetDomainInfoList struct {
	_           structs.HostLayout
	FirstDomain uint16
	_           [2]byte
	MaxDomains  uint32
	Buffer      uint64
	NumDomains  uint32
	_           [4]byte
}

// TmemOp is struct tmem_op of generations A1–D (Xen 4.0.2 … 4.12): 56 bytes,
// a command, a pool id and a 48-byte union. The union views are
// [TmemOpCreat], [TmemOpCtrl] and [TmemOpGen].
type TmemOp struct {
	_      structs.HostLayout
	_      [0]uint64
	Cmd    uint32
	PoolID int32
	U      [48]byte
}

// TmemOpCreat is TmemOp with its union read as u.creat (NEW_POOL, TMEM_AUTH,
// TMEM_RESTORE_NEW).
type TmemOpCreat struct {
	_      structs.HostLayout
	Cmd    uint32
	PoolID int32
	UUID   [2]uint64 // [0] lo, [1] hi
	Flags  uint32
	Arg1   uint32 // AUTH/RESTORE_NEW: target domain
	_      [24]byte
}

// TmemOpCtrl is TmemOp with its union read as u.ctrl (TMEM_CONTROL,
// generation A1 only).
type TmemOpCtrl struct {
	_      structs.HostLayout
	Cmd    uint32
	PoolID int32
	Subop  uint32
	CliID  uint32
	Arg1   uint32
	Arg2   uint32
	OID    [3]uint64
	Buf    uint64
}

// TmemOpGen is TmemOp with its union read as u.gen (page operations).
type TmemOpGen struct {
	_          structs.HostLayout
	Cmd        uint32
	PoolID     int32
	OID        [3]uint64
	Index      uint32
	TmemOffset uint32
	PfnOffset  uint32
	Len        uint32
	CMFN       uint64
}

// TmemOpA0 is struct tmem_op of generation A0 (Xen 4.0.0, 4.0.1): 40 bytes.
type TmemOpA0 struct {
	_      structs.HostLayout
	_      [0]uint64
	Cmd    uint32
	PoolID int32
	U      [32]byte
}

// TmemOpA0New is TmemOpA0 with its union read as u.new.
type TmemOpA0New struct {
	_      structs.HostLayout
	Cmd    uint32
	PoolID int32
	UUID   [2]uint64
	Flags  uint32
	Arg1   uint32
	_      [8]byte
}

// TmemOpA0Ctrl is TmemOpA0 with its union read as u.ctrl.
type TmemOpA0Ctrl struct {
	_      structs.HostLayout
	Cmd    uint32
	PoolID int32
	Subop  uint32
	CliID  uint32
	Arg1   uint32
	Arg2   uint32
	Arg3   uint64 // object id
	Buf    uint64
}

// TmemOpA0Gen is TmemOpA0 with its union read as u.gen.
type TmemOpA0Gen struct {
	_          structs.HostLayout
	Cmd        uint32
	PoolID     int32
	Object     uint64
	Index      uint32
	TmemOffset uint32
	PfnOffset  uint32
	Len        uint32
	CMFN       uint64
}

// TmemClient is struct xen_tmem_client (4.8+), alignment 4.
type TmemClient struct {
	_        structs.HostLayout
	Version  uint32
	MaxPools uint32
	NrPools  uint32
	Flags    uint32 // bit0 frozen, bit1 compress, bit2 migrating
	Weight   uint32
}

// TmemPoolInfo is struct xen_tmem_pool_info (4.8+).
type TmemPoolInfo struct {
	_      structs.HostLayout
	Flags  uint32 // bit0 persist, bit1 shared, bit2 auth (4.9+), 4–11 pagebits, 24–31 version
	ID     uint32
	NPages uint64
	UUID   [2]uint64
}

// TmemHandle is struct tmem_handle (4.0.2+), the save-stream page record.
type TmemHandle struct {
	_      structs.HostLayout
	PoolID uint32
	Index  uint32
	OID    [3]uint64
}

// TmemHandleA0 is struct tmem_handle of Xen 4.0.0/4.0.1.
type TmemHandleA0 struct {
	_      structs.HostLayout
	PoolID uint32
	Index  uint32
	OID    uint64
}

// Tmem commands (cmd of struct tmem_op, xen/include/public/tmem.h).
const (
	TMEM_CONTROL      = 0
	TMEM_NEW_POOL     = 1
	TMEM_DESTROY_POOL = 2
	TMEM_NEW_PAGE     = 3
	TMEM_PUT_PAGE     = 4
	TMEM_GET_PAGE     = 5
	TMEM_FLUSH_PAGE   = 6
	TMEM_FLUSH_OBJECT = 7
	TMEM_READ         = 8
	TMEM_WRITE        = 9
	TMEM_XCHG         = 10
	TMEM_AUTH         = 101
	TMEM_RESTORE_NEW  = 102
)

// Pool flag bits (NEW_POOL u.creat.flags).
const (
	TMEM_POOL_PERSIST        = 0x1
	TMEM_POOL_SHARED         = 0x2
	TMEM_POOL_PRECOMPRESSED  = 0x4
	TMEM_POOL_PAGESIZE_SHIFT = 4
	TMEM_POOL_PAGESIZE_MASK  = 0xF
	TMEM_POOL_VERSION_SHIFT  = 24
	TMEM_POOL_VERSION_MASK   = 0xFF
	TMEM_POOL_RESERVED_BITS  = 0x00FFFF00
	TMEM_SPEC_VERSION        = 1
)

// Tmem control sub-ops. Generation A/B numbering (Xen 4.0–4.7) first; the
// 4.8+ numbers that re-use 5, 6, 7 and 11 follow.
const (
	TMEMC_THAW                   = 0
	TMEMC_FREEZE                 = 1
	TMEMC_FLUSH                  = 2
	TMEMC_DESTROY                = 3
	TMEMC_LIST                   = 4
	TMEMC_SET_WEIGHT             = 5 // A, B
	TMEMC_SET_CAP                = 6 // A, B
	TMEMC_SET_COMPRESS           = 7 // A, B
	TMEMC_QUERY_FREEABLE_MB      = 8
	TMEMC_SAVE_BEGIN             = 10
	TMEMC_SAVE_GET_VERSION       = 11 // A, B
	TMEMC_SAVE_GET_MAXPOOLS      = 12 // A, B
	TMEMC_SAVE_GET_CLIENT_WEIGHT = 13 // A, B
	TMEMC_SAVE_GET_CLIENT_CAP    = 14 // A, B
	TMEMC_SAVE_GET_CLIENT_FLAGS  = 15 // A, B
	TMEMC_SAVE_GET_POOL_FLAGS    = 16 // A, B
	TMEMC_SAVE_GET_POOL_NPAGES   = 17 // A, B
	TMEMC_SAVE_GET_POOL_UUID     = 18 // A, B
	TMEMC_SAVE_GET_NEXT_PAGE     = 19
	TMEMC_SAVE_GET_NEXT_INV      = 20
	TMEMC_SAVE_END               = 21
	TMEMC_RESTORE_BEGIN          = 30
	TMEMC_RESTORE_PUT_PAGE       = 32
	TMEMC_RESTORE_FLUSH_PAGE     = 33

	XEN_SYSCTL_TMEM_OP_GET_CLIENT_INFO = 5  // C, D
	XEN_SYSCTL_TMEM_OP_SET_CLIENT_INFO = 6  // C, D
	XEN_SYSCTL_TMEM_OP_GET_POOLS       = 7  // C, D
	XEN_SYSCTL_TMEM_OP_SET_POOLS       = 9  // D
	XEN_SYSCTL_TMEM_OP_SET_AUTH        = 11 // D
)

// TmemAllClients is the cli_id meaning "every client".
const TmemAllClients = 0xFFFF

// XENVER_* sub-commands of the xen_version hypercall.
const (
	XENVER_version      = 0
	XENVER_extraversion = 1
	XENVER_capabilities = 3
	XENVER_changeset    = 4
	XENVER_pagesize     = 7
	XENVER_commandline  = 9

	XenExtraversionLen = 16
	XenCapabilitiesLen = 1024
	XenChangesetLen    = 64
	XenCommandlineLen  = 1024
)
