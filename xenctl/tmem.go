package xenctl

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/xentmem/xentmem/hypercall"
)

// The typed tmem API. One Client method per operation; every method works
// on every tmem ABI generation (A0, A1, B, C, D; xen-tmem-abi.md §0) or
// returns an [*UnsupportedError] naming the Xen releases that have it.
//
// Files: this one holds the control operations that are one hypercall on
// every generation and the plumbing; tmem_guest.go the guest page
// operations; tmem_info.go client and pool details, pool creation and
// shared-pool authorisation; tmem_save.go and tmem_stream.go save/restore.
// The byte layouts live in one file per generation, tmem_v_a0.go …
// tmem_v_d.go, as pure encode/decode functions pinned by
// testdata/tmem/*.hex.

// AllClients is the tmem client id meaning "every client"
// (TMEM_CLI_ID_NULL, XEN_SYSCTL_TMEM_OP_ALL_CLIENTS). It is not a domain id.
const AllClients uint16 = hypercall.TmemAllClients

// Operation names used in errors.
const (
	opTmemList         = "tmem list"
	opTmemFreeze       = "tmem freeze"
	opTmemThaw         = "tmem thaw"
	opTmemDestroy      = "tmem destroy"
	opTmemFlush        = "tmem flush"
	opTmemSetWeight    = "tmem set weight"
	opTmemSetCap       = "tmem set cap"
	opTmemSetCompress  = "tmem set compress"
	opTmemFreeable     = "tmem query freeable"
	opTmemSharedAuth   = "tmem shared auth"
	opTmemClientInfo   = "tmem client info"
	opTmemPoolInfo     = "tmem pool info"
	opTmemCreatePools  = "tmem create pools"
	opTmemSaveBegin    = "tmem save begin"
	opTmemSaveNextPage = "tmem save get next page"
	opTmemSaveNextInv  = "tmem save get next invalidation"
	opTmemSaveEnd      = "tmem save end"
	opTmemRestoreBegin = "tmem restore begin"
	opTmemRestorePut   = "tmem restore put page"
	opTmemRestoreFlush = "tmem restore flush page"
	opTmemSaveDomain   = "tmem save domain"
	opTmemRestoreDom   = "tmem restore domain"
	opTmemNewPool      = "tmem new pool"
	opTmemDestroyPool  = "tmem destroy pool"
	opTmemPutPage      = "tmem put page"
	opTmemGetPage      = "tmem get page"
	opTmemFlushPage    = "tmem flush page"
	opTmemFlushObject  = "tmem flush object"
)

// Release ranges for UnsupportedError.Have.
const (
	haveTmem        = "4.0–4.12"
	haveCap         = "4.0–4.7"
	haveGlobalAuth  = "4.0–4.8"
	haveCreatePools = "4.0–4.12 (as RESTORE_NEW before 4.9)"
)

// Hints for a bare -1 (EPERM) from specific control operations.
const (
	hintNoClient = "Xen answered -1: the domain has no tmem client"
	hintFlush    = "Xen answered -1: tmem can only flush all clients"
)

// ctrlOp is a control operation, independent of how a generation numbers it.
type ctrlOp uint8

const (
	ctlThaw ctrlOp = iota
	ctlFreeze
	ctlFlush
	ctlDestroy
	ctlList
	ctlSetWeight   // A, B
	ctlSetCap      // A, B
	ctlSetCompress // A, B
	ctlFreeable
	ctlSaveBegin
	ctlGetPoolFlags  // A, B
	ctlGetPoolNPages // A, B
	ctlGetPoolUUID   // A, B
	ctlSaveNextPage
	ctlSaveNextInv
	ctlSaveEnd
	ctlRestoreBegin
	ctlRestorePutPage
	ctlRestoreFlushPage
	ctlGetClientInfo // C, D
	ctlSetClientInfo // C, D
	ctlGetPools      // C, D
	ctlSetPools      // D
	ctlSetAuth       // D
	ctlCount
)

// ctrlHave names the releases that have the user-facing operation behind
// op. Only cap is missing from some tmem generations; the generation-specific
// sub-ops (GET_CLIENT_INFO, SET_POOLS, …) are only issued where they exist.
func ctrlHave(op ctrlOp) string {
	if op == ctlSetCap {
		return haveCap
	}
	return haveTmem
}

// ctrlReq is one control request in generation-neutral form. Each
// generation's encoder numbers op and places val and size in its own
// fields (argsA in tmem_v_a0.go, argsCD in tmem_v_c.go).
type ctrlReq struct {
	op   ctrlOp
	pool int32  // pool_id: SAVE/RESTORE only, 0 otherwise
	cli  uint16 // cli_id
	val  uint32 // the one value: KiB, weight, cap, compress, long, live or index
	size uint32 // length of the buffer at buf
	oid  [3]uint64
	buf  uint64
}

// creatReq is a struct tmem_op read as u.creat (u.new on A0): NEW_POOL,
// TMEM_AUTH and TMEM_RESTORE_NEW.
type creatReq struct {
	cmd   uint32
	pool  int32
	uuid  UUID
	flags uint32
	arg1  uint32 // AUTH/RESTORE_NEW: target domain
}

// genReq is a struct tmem_op read as u.gen: the page operations.
type genReq struct {
	cmd   uint32
	pool  int32
	oid   [3]uint64
	index uint32
	frame uint64
}

// tmemABI encodes requests for one generation. Implementations are
// zero-size values, so choosing one per operation costs nothing.
type tmemABI interface {
	generation() Generation
	// ctrlCall returns the hypercall that carries control requests and the
	// offset and size of their argument image in the scratch page.
	ctrlCall() (op hypercall.Op, off, size int)
	// subop returns the generation's number for op, false if it lacks op.
	subop(op ctrlOp) (uint32, bool)
	// encodeCtrl writes r into arg, the whole argument image.
	encodeCtrl(arg []byte, iface uint32, r ctrlReq) error
	// tmemOpSize is sizeof(struct tmem_op): 40 on A0, 56 later.
	tmemOpSize() int
	encodeCreat(arg []byte, r creatReq) error
	encodeGen(arg []byte, r genReq) error
	// specVersion is the spec version pool flags must carry: 0 on A0.
	specVersion() uint32
	// handleSize is sizeof(struct tmem_handle): 16 on A0, 32 later.
	handleSize() int
	decodeHandle(b []byte) (PageHandle, error)
}

var (
	_ tmemABI = abiA0{}
	_ tmemABI = abiA1{}
	_ tmemABI = abiB{}
	_ tmemABI = abiC{}
	_ tmemABI = abiD{}
)

// abiFor returns the encoder of generation g, nil for GenNone.
func abiFor(g Generation) tmemABI {
	switch g {
	case GenA0:
		return abiA0{}
	case GenA1:
		return abiA1{}
	case GenB:
		return abiB{}
	case GenC:
		return abiC{}
	case GenD:
		return abiD{}
	}
	return nil
}

// image clears the first sizeof(T) bytes of arg and returns them as a *T.
func image[T any](arg []byte) (*T, error) {
	n := hypercall.SizeOf[T]()
	if len(arg) < n {
		return nil, fmt.Errorf("%w: %d-byte argument image, need %d", ErrBadInput, len(arg), n)
	}
	clear(arg[:n])
	return hypercall.ViewBytes[T](arg[:n], 0)
}

// abi returns the running generation's encoder, or an *UnsupportedError.
func (cl *Client) abi(op, have string) (tmemABI, error) {
	if a := abiFor(cl.gen); a != nil {
		return a, nil
	}
	return nil, &UnsupportedError{Op: op, Running: cl.ver, Have: have}
}

// scratchPage returns the scratch page, or an error once the Client is
// closed. cl.mu held.
func (cl *Client) scratchPage(op string) ([]byte, error) {
	if p := cl.scratch.Bytes(); p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("xenctl: %s: %w", op, hypercall.ErrBufferClosed)
}

// ctrl issues one control request.
func (cl *Client) ctrl(name string, r ctrlReq, hint string) (uint64, error) {
	abi, err := cl.abi(name, ctrlHave(r.op))
	if err != nil {
		return 0, err
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.ctrlLocked(abi, name, r, hint)
}

// ctrlLocked encodes r into the scratch page, issues it and maps a failure
// to an *Error; hint replaces the generic one for a bare -1. cl.mu held.
func (cl *Client) ctrlLocked(abi tmemABI, name string, r ctrlReq, hint string) (uint64, error) {
	if _, ok := abi.subop(r.op); !ok {
		return 0, &UnsupportedError{Op: name, Running: cl.ver, Have: ctrlHave(r.op)}
	}
	page, err := cl.scratchPage(name)
	if err != nil {
		return 0, err
	}
	hc, off, size := abi.ctrlCall()
	if err := abi.encodeCtrl(page[off:off+size], cl.iface, r); err != nil {
		return 0, fmt.Errorf("xenctl: %s: %w", name, err)
	}
	rc, err := cl.c.Hypercall(hc, hypercall.Args{cl.scratch.AddrAt(off)})
	if err != nil {
		cli := int(r.cli)
		if r.op == ctlFreeable {
			cli = -1
		}
		return 0, tmemError(name, kindTmemControl, "client", cli, err, hint)
	}
	return rc, nil
}

// creatLocked issues a tmem_op read as u.creat (hypercall 38). cl.mu held.
func (cl *Client) creatLocked(abi tmemABI, name string, kind opKind, r creatReq, subject string, id int) (uint64, error) {
	page, err := cl.scratchPage(name)
	if err != nil {
		return 0, err
	}
	if err := abi.encodeCreat(page[scratchTmemOp:scratchTmemOp+abi.tmemOpSize()], r); err != nil {
		return 0, fmt.Errorf("xenctl: %s: %w", name, err)
	}
	rc, err := cl.c.Hypercall(hypercall.OpTmem, hypercall.Args{cl.scratch.AddrAt(scratchTmemOp)})
	if err != nil {
		return 0, tmemError(name, kind, subject, id, err, "")
	}
	return rc, nil
}

// tmemError maps err like opError and names the subject ("client 3", "all
// clients", "pool 2") in Op; id < 0 names nothing. hint, if set, replaces
// the hint of a bare -1 (EPERM).
func tmemError(name string, kind opKind, subject string, id int, err error, hint string) error {
	err = opError(name, kind, err)
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	switch {
	case id < 0:
	case subject == "client" && id == int(AllClients):
		e.Op += " (all clients)"
	default:
		e.Op += " (" + subject + " " + strconv.Itoa(id) + ")"
	}
	if hint != "" && e.Errno == hypercall.EPERM {
		e.Hint = hint
	}
	return e
}

// resultError is a non-negative result an operation does not define.
func resultError(name string, rc uint64, want string) error {
	return fmt.Errorf("xenctl: %s: %w: Xen answered %d, want %s", name, ErrFailed, rc, want)
}

// Freeze stops cli (a domain id, or [AllClients]) from adding pages: its
// puts of new pages fail with EFROZEN until [Client.Thaw]. Xen answers a
// domain without a tmem client with -1 ([ErrFailed]).
func (cl *Client) Freeze(cli uint16) error {
	_, err := cl.ctrl(opTmemFreeze, ctrlReq{op: ctlFreeze, cli: cli}, hintNoClient)
	return err
}

// Thaw undoes [Client.Freeze].
func (cl *Client) Thaw(cli uint16) error {
	_, err := cl.ctrl(opTmemThaw, ctrlReq{op: ctlThaw, cli: cli}, hintNoClient)
	return err
}

// Destroy sends TMEMC_DESTROY. Despite the name, every Xen release treats
// it exactly like THAW: it clears the frozen flag and destroys nothing
// (xen-tmem-abi.md §4.2; confirmed on 4.12). A pool is destroyed only by its
// own domain ([Client.DestroyPool]) or when the domain dies.
func (cl *Client) Destroy(cli uint16) error {
	_, err := cl.ctrl(opTmemDestroy, ctrlReq{op: ctlDestroy, cli: cli}, hintNoClient)
	return err
}

// Flush asks tmem to give kib KiB back to Xen's heap by evicting ephemeral
// pages, and returns how many KiB it released: tmem then releases its whole
// free list, so the result may exceed kib, or fall short when there is
// nothing left to evict. Xen flushes all clients only: cli must be
// [AllClients]; any other value is rejected here with [ErrBadInput]. Xen
// computes in 32 bits: kib within 3 of 2³² wraps to 0 pages.
func (cl *Client) Flush(cli uint16, kib uint32) (uint64, error) {
	if _, err := cl.abi(opTmemFlush, haveTmem); err != nil {
		return 0, err
	}
	if cli != AllClients {
		return 0, fmt.Errorf("xenctl: %s: %w: Xen flushes all clients only (AllClients), not client %d", opTmemFlush, ErrBadInput, cli)
	}
	return cl.ctrl(opTmemFlush, ctrlReq{op: ctlFlush, cli: cli, val: kib}, hintFlush)
}

// QueryFreeableMiB returns the MiB tmem could give back to Xen: its free
// list plus the pages of ephemeral pools and of its own metadata. Xen 4.6
// and later answer 0 when tmem is compiled in but disabled.
func (cl *Client) QueryFreeableMiB() (uint64, error) {
	return cl.ctrl(opTmemFreeable, ctrlReq{op: ctlFreeable}, "")
}

// SetWeight sets cli's weight (a domain, or [AllClients]). Up to Xen 4.7
// this is TMEMC_SET_WEIGHT. From 4.8 it is GET_CLIENT_INFO, change the
// weight, SET_CLIENT_INFO, as libxl does; with AllClients that writes the
// generic record Xen returns for "all" (compression off) to every client,
// so it also switches compression off everywhere, exactly like xl tmem-set -a.
func (cl *Client) SetWeight(cli uint16, weight uint32) error {
	if cl.gen >= GenC {
		return cl.updateClientInfo(opTmemSetWeight, cli, func(c *ClientInfo) { c.Weight = weight })
	}
	_, err := cl.ctrl(opTmemSetWeight, ctrlReq{op: ctlSetWeight, cli: cli, val: weight}, hintNoClient)
	return err
}

// SetCap sets cli's cap (Xen 4.0–4.7 only; Xen stores, lists and migrates
// it but never enforces it). Later releases return an *UnsupportedError.
func (cl *Client) SetCap(cli uint16, capacity uint32) error {
	_, err := cl.ctrl(opTmemSetCap, ctrlReq{op: ctlSetCap, cli: cli, val: capacity}, hintNoClient)
	return err
}

// SetCompress switches LZO compression of cli's future puts on or off. Up
// to 4.7 this is TMEMC_SET_COMPRESS, refused (-1) while Xen runs with
// tmem_dedup. From 4.8 it is GET_CLIENT_INFO then SET_CLIENT_INFO with the
// compress bit changed (xl tmem-set -p N stores N&1; this API takes a bool).
// [Client.SetWeight] explains what AllClients does there.
func (cl *Client) SetCompress(cli uint16, on bool) error {
	if cl.gen >= GenC {
		return cl.updateClientInfo(opTmemSetCompress, cli, func(c *ClientInfo) { c.Compress = on })
	}
	_, err := cl.ctrl(opTmemSetCompress, ctrlReq{op: ctlSetCompress, cli: cli, val: b2u(on)}, hintNoClient)
	return err
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// List returns the raw text of TMEMC_LIST (xen-tmem-abi.md §7) for cli, a
// domain or [AllClients], in the long form (with statistics) if long is
// set; [ParseList] parses it. Xen's truncation check is unreliable (it
// writes past the length it is given), so the buffer is sized for the worst
// case, max(16 KiB, 1024 × (18 + 17 × clients)) for all clients, with the
// client count taken from the domain list (64 if that fails), and Xen is
// told its true size. A domain without a tmem client fails with -1
// ([ErrFailed]).
func (cl *Client) List(cli uint16, long bool) ([]byte, error) {
	clients := 1
	if cli == AllClients {
		clients = 64
		if doms, err := cl.Domains(); err == nil {
			clients = len(doms) + 8 // clients may appear meanwhile
		}
	}
	return cl.list(opTmemList, cli, long, listBufferSize(cli, clients))
}

// listBufferSize is the worst-case LIST output for cli with the given
// number of clients (§7.1), rounded up to whole pages.
func listBufferSize(cli uint16, clients int) int {
	n := 1024 * 17
	if cli == AllClients {
		n = 1024 * (18 + 17*clients)
	}
	n = max(n, 16<<10)
	return (n + hypercall.PageSize - 1) &^ (hypercall.PageSize - 1)
}

// list issues LIST into a buffer of at least size bytes and returns the
// text up to the NUL; name is the operation named in errors. The buffer is
// kept on the Client and reused while it is big enough: a monitoring daemon
// lists every second, and the worst-case size runs to megabytes.
func (cl *Client) list(name string, cli uint16, long bool, size int) ([]byte, error) {
	abi, err := cl.abi(name, haveTmem)
	if err != nil {
		return nil, err
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.listBuf == nil || cl.listBuf.Len() < size {
		if cl.listBuf != nil {
			cl.listBuf.Close()
			cl.listBuf = nil
		}
		buf, err := cl.c.Alloc(size)
		if err != nil {
			return nil, fmt.Errorf("xenctl: %s: allocate %d-byte buffer: %w", name, size, err)
		}
		cl.listBuf = buf
	}
	buf := cl.listBuf
	text := buf.Bytes()
	// Xen ends the text with a NUL; one at the start makes an answer that
	// wrote nothing read as empty rather than as the previous call's text.
	text[0] = 0
	_, err = cl.ctrlLocked(abi, name, ctrlReq{op: ctlList, cli: cli, val: b2u(long), size: uint32(len(text)), buf: buf.Addr()}, hintNoClient)
	if err != nil {
		return nil, err
	}
	n := bytes.IndexByte(text, 0)
	if n < 0 {
		return nil, fmt.Errorf("xenctl: %s: %w: no NUL in the %d-byte buffer (Xen overran it)", name, ErrListFormat, len(text))
	}
	return bytes.Clone(text[:n]), nil
}
