package xenctl

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/xentmem/xentmem/hypercall"
)

// Guest operations: struct tmem_op commands 1–7 through hypercall 38, as a
// guest kernel issues them for itself (xen-tmem-abi.md §3). A management
// tool normally never sends them: the first one makes the calling domain
// (dom0) a tmem client for good (§10.2). They exist for tests, for the
// simulator's workload drivers and for restore paths.
//
// The argument is the 40-byte tmem_op on generation A0 (object id: one
// 64-bit word, so oid[1] and oid[2] must be 0) and the 56-byte one on every
// later generation (192-bit object id).

// PoolFlags is the pool flags word of NEW_POOL and TMEM_RESTORE_NEW and the
// flags of struct xen_tmem_pool_info (xen-tmem-abi.md §3.4, §6.3).
type PoolFlags uint32

// Pool flag bits.
const (
	// PoolPersistent marks a persistent pool (frontswap); clear means
	// ephemeral (cleancache).
	PoolPersistent PoolFlags = hypercall.TMEM_POOL_PERSIST
	// PoolShared marks a shared pool, identified by its [UUID].
	PoolShared PoolFlags = hypercall.TMEM_POOL_SHARED
	// PoolAuth is bit 2 of a SET_AUTH record (4.9+). In NEW_POOL flags the
	// same bit means "precompressed" and Xen refuses it.
	PoolAuth PoolFlags = hypercall.TMEM_POOL_PRECOMPRESSED
)

// Persistent reports the persistent bit.
func (f PoolFlags) Persistent() bool { return f&PoolPersistent != 0 }

// Shared reports the shared bit.
func (f PoolFlags) Shared() bool { return f&PoolShared != 0 }

// PageShift returns log2(page size) − 12 (bits 4–7): 0 for 4 KiB pages.
func (f PoolFlags) PageShift() uint32 {
	return uint32(f) >> hypercall.TMEM_POOL_PAGESIZE_SHIFT & hypercall.TMEM_POOL_PAGESIZE_MASK
}

// SpecVersion returns the spec version (bits 24–31): 0 on Xen 4.0.0/4.0.1,
// 1 later.
func (f PoolFlags) SpecVersion() uint32 {
	return uint32(f) >> hypercall.TMEM_POOL_VERSION_SHIFT & hypercall.TMEM_POOL_VERSION_MASK
}

// String returns e.g. "persistent|shared|v1" or "ephemeral|private|v0",
// followed by "|0x…" for any other bits.
func (f PoolFlags) String() string {
	var b strings.Builder
	if f.Persistent() {
		b.WriteString("persistent")
	} else {
		b.WriteString("ephemeral")
	}
	if f.Shared() {
		b.WriteString("|shared")
	} else {
		b.WriteString("|private")
	}
	b.WriteString("|v" + strconv.Itoa(int(f.SpecVersion())))
	if rest := f &^ (PoolPersistent | PoolShared | hypercall.TMEM_POOL_VERSION_MASK<<hypercall.TMEM_POOL_VERSION_SHIFT); rest != 0 {
		fmt.Fprintf(&b, "|%#x", uint32(rest))
	}
	return b.String()
}

// PoolSpec describes a pool to create.
type PoolSpec struct {
	Persistent bool
	Shared     bool
	// UUID identifies a shared pool. It is sent as given for a private
	// pool too; Xen ignores it there (and LIST shows 0).
	UUID UUID
}

// Flags returns the NEW_POOL flags word for s on generation g: the
// persistent and shared bits, 4 KiB pages (page bits 0), and spec version 0
// on A0 (Xen 4.0.0/4.0.1), 1 on every later generation.
func (s PoolSpec) Flags(g Generation) PoolFlags {
	return poolFlags(s.Persistent, s.Shared, g)
}

func poolFlags(persistent, shared bool, g Generation) PoolFlags {
	var f PoolFlags
	if persistent {
		f |= PoolPersistent
	}
	if shared {
		f |= PoolShared
	}
	if g != GenA0 {
		f |= hypercall.TMEM_SPEC_VERSION << hypercall.TMEM_POOL_VERSION_SHIFT
	}
	return f
}

// NewPool creates a pool for the calling domain and returns its id (0–15).
// Xen answers bad flags, a 17th pool, or (4.5+) persistent+shared with -1
// ([ErrFailed]). An unauthorised shared pool silently becomes private.
func (cl *Client) NewPool(s PoolSpec) (int, error) {
	return cl.NewPoolFlags(s.Flags(cl.gen), s.UUID)
}

// NewPoolFlags is [Client.NewPool] with the flags word sent verbatim, to
// exercise Xen's flag checks.
func (cl *Client) NewPoolFlags(flags PoolFlags, uuid UUID) (int, error) {
	abi, err := cl.abi(opTmemNewPool, haveTmem)
	if err != nil {
		return 0, err
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	rc, err := cl.creatLocked(abi, opTmemNewPool, kindTmemGuest,
		creatReq{cmd: hypercall.TMEM_NEW_POOL, uuid: uuid, flags: uint32(flags)}, "", -1)
	if err != nil {
		return 0, err
	}
	if rc >= tmemMaxPools {
		return 0, resultError(opTmemNewPool, rc, "a pool id 0–15")
	}
	return int(rc), nil
}

// DestroyPool destroys one of the calling domain's pools. It reports false
// when the slot held no pool (Xen answers 0).
func (cl *Client) DestroyPool(pool int) (bool, error) {
	rc, err := cl.guest(opTmemDestroyPool, pool, genReq{cmd: hypercall.TMEM_DESTROY_POOL})
	if err != nil {
		return false, err
	}
	return rc == 1, nil
}

// PutPage copies the page at frame (an MFN from a PV domain, a GFN from an
// HVM one) into pool under (oid, index). Failures: [ErrFrozen] for a new
// page of a frozen client, [ErrNoMemory], [ErrNoPool], [ErrFault] for a
// frame that is not the caller's, ENOSPC when an overwrite failed and the
// old copy was dropped.
func (cl *Client) PutPage(pool int, oid [3]uint64, index uint32, frame uint64) error {
	rc, err := cl.guest(opTmemPutPage, pool, genReq{cmd: hypercall.TMEM_PUT_PAGE, oid: oid, index: index, frame: frame})
	if err == nil && rc != 1 {
		err = resultError(opTmemPutPage, rc, "1")
	}
	return err
}

// GetPage copies the page (oid, index) of pool into frame and reports
// whether it was there: Xen answers 1 for a hit, 0 for a miss, and -EEMPTY
// ([ErrEmpty]) when the pool holds no pages at all. A hit in a private
// ephemeral pool removes the page.
func (cl *Client) GetPage(pool int, oid [3]uint64, index uint32, frame uint64) (bool, error) {
	rc, err := cl.guest(opTmemGetPage, pool, genReq{cmd: hypercall.TMEM_GET_PAGE, oid: oid, index: index, frame: frame})
	switch {
	case err != nil:
		return false, err
	case rc > 1:
		return false, resultError(opTmemGetPage, rc, "0 or 1")
	}
	return rc == 1, nil
}

// FlushPage removes (oid, index) from pool; Xen succeeds whether or not the
// page was there. A frozen client gets [ErrFrozen], though the flush
// happened.
func (cl *Client) FlushPage(pool int, oid [3]uint64, index uint32) error {
	rc, err := cl.guest(opTmemFlushPage, pool, genReq{cmd: hypercall.TMEM_FLUSH_PAGE, oid: oid, index: index})
	if err == nil && rc != 1 {
		err = resultError(opTmemFlushPage, rc, "1")
	}
	return err
}

// FlushObject removes every page of object oid from pool, like
// [Client.FlushPage].
func (cl *Client) FlushObject(pool int, oid [3]uint64) error {
	rc, err := cl.guest(opTmemFlushObject, pool, genReq{cmd: hypercall.TMEM_FLUSH_OBJECT, oid: oid})
	if err == nil && rc != 1 {
		err = resultError(opTmemFlushObject, rc, "1")
	}
	return err
}

// guest issues a tmem_op read as u.gen for pool.
func (cl *Client) guest(name string, pool int, r genReq) (uint64, error) {
	abi, err := cl.abi(name, haveTmem)
	if err != nil {
		return 0, err
	}
	if r.pool, err = poolID(name, pool); err != nil {
		return 0, err
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	page, err := cl.scratchPage(name)
	if err != nil {
		return 0, err
	}
	if err := abi.encodeGen(page[scratchTmemOp:scratchTmemOp+abi.tmemOpSize()], r); err != nil {
		return 0, fmt.Errorf("xenctl: %s: %w", name, err)
	}
	rc, err := cl.c.Hypercall(hypercall.OpTmem, hypercall.Args{cl.scratch.AddrAt(scratchTmemOp)})
	if err != nil {
		return 0, tmemError(name, kindTmemGuest, "pool", pool, err, "")
	}
	return rc, nil
}

// poolID converts a pool id for the s32 pool_id field. Values outside 0–15
// are sent as they are, so that Xen's own checks can be exercised.
func poolID(name string, pool int) (int32, error) {
	if pool < math.MinInt32 || pool > math.MaxInt32 {
		return 0, fmt.Errorf("xenctl: %s: %w: pool id %d does not fit in 32 bits", name, ErrBadInput, pool)
	}
	return int32(pool), nil
}
