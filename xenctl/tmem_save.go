package xenctl

import (
	"errors"
	"fmt"

	"github.com/xentmem/xentmem/hypercall"
)

// Save and restore of a domain's tmem client, the control sub-ops 10 and
// 19–33 (xen-tmem-abi.md §4.2, §6.4). The usual order: [Client.SaveBegin]
// (freezes the client), [Client.ClientInfo] and [Client.PoolInfo], for each
// persistent pool [Client.SaveGetNextPage] until it reports no more, and
// [Client.SaveEnd]; on the other side [Client.RestoreBegin],
// [Client.CreatePools] and [Client.RestorePutPage] per page.
// [Client.SaveDomain] and [Client.RestoreDomain] do all of that.

// PageHandle identifies a page in a save: struct tmem_handle.
type PageHandle struct {
	Pool  uint32    // pool slot
	Index uint32    // page index in the object
	OID   [3]uint64 // object id; 4.0.0/4.0.1 use OID[0] only
}

// PageSize is the size of a tmem page (x86).
const PageSize = hypercall.PageSize

// SaveBegin starts saving cli's client: Xen freezes it (remembering whether
// it was frozen) and, if live, marks it migrating. It reports false when
// there is nothing to save: no client or no pools (up to 4.7 Xen answers
// 0, from 4.8 -ENOENT).
//
// On Xen 4.0.x, 4.1.0–4.1.3 and 4.2.0 never call SaveEnd for a domain
// whose SaveBegin reported false: SAVE_END dereferences the missing client
// there.
func (cl *Client) SaveBegin(cli uint16, live bool) (bool, error) {
	rc, err := cl.ctrl(opTmemSaveBegin, ctrlReq{op: ctlSaveBegin, cli: cli, val: b2u(live)}, "")
	if cl.gen >= GenC {
		if errors.Is(err, hypercall.ENOENT) {
			return false, nil
		}
		return err == nil, err
	}
	if err != nil {
		return false, err
	}
	return rc == 1, nil
}

// SaveGetNextPage copies the next page of persistent pool pool into page
// (at least [PageSize] bytes) and returns its handle; false means the pool
// has no more pages (Xen answers -1, also for an ephemeral pool). Each call
// allocates a hypercall buffer; [Client.SaveDomain] reuses one.
func (cl *Client) SaveGetNextPage(cli uint16, pool int, page []byte) (PageHandle, bool, error) {
	abi, err := cl.abi(opTmemSaveNextPage, haveTmem)
	if err != nil {
		return PageHandle{}, false, err
	}
	if len(page) < PageSize {
		return PageHandle{}, false, fmt.Errorf("xenctl: %s: %w: %d-byte page buffer, want %d", opTmemSaveNextPage, ErrBadInput, len(page), PageSize)
	}
	buf, err := cl.c.Alloc(tmemHandleSize + PageSize)
	if err != nil {
		return PageHandle{}, false, fmt.Errorf("xenctl: %s: %w", opTmemSaveNextPage, err)
	}
	defer buf.Close()
	return cl.saveNextPage(abi, buf, cli, pool, page)
}

// saveNextPage is SaveGetNextPage with a caller-provided hypercall buffer
// of at least 32 + 4096 bytes.
func (cl *Client) saveNextPage(abi tmemABI, buf *hypercall.Buffer, cli uint16, pool int, page []byte) (PageHandle, bool, error) {
	id, err := poolID(opTmemSaveNextPage, pool)
	if err != nil {
		return PageHandle{}, false, err
	}
	hs := abi.handleSize()
	b := buf.Bytes()[:hs+PageSize]
	clear(b)
	cl.mu.Lock()
	rc, err := cl.ctrlLocked(abi, opTmemSaveNextPage, ctrlReq{op: ctlSaveNextPage, cli: cli, pool: id, size: uint32(len(b)), buf: buf.Addr()}, "")
	cl.mu.Unlock()
	switch {
	case errors.Is(err, hypercall.EPERM):
		return PageHandle{}, false, nil
	case err != nil:
		return PageHandle{}, false, err
	case rc != 1:
		return PageHandle{}, false, resultError(opTmemSaveNextPage, rc, "1")
	}
	h, err := abi.decodeHandle(b[:hs])
	if err != nil {
		return PageHandle{}, false, fmt.Errorf("xenctl: %s: %w", opTmemSaveNextPage, err)
	}
	copy(page, b[hs:])
	return h, true, nil
}

// SaveGetNextInv returns the next page invalidated (flushed) during a live
// save, which the receiving side must flush; false means none is left.
func (cl *Client) SaveGetNextInv(cli uint16) (PageHandle, bool, error) {
	abi, err := cl.abi(opTmemSaveNextInv, haveTmem)
	if err != nil {
		return PageHandle{}, false, err
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	page, err := cl.scratchPage(opTmemSaveNextInv)
	if err != nil {
		return PageHandle{}, false, err
	}
	hs := abi.handleSize()
	rec := page[scratchRecord : scratchRecord+hs]
	clear(rec)
	rc, err := cl.ctrlLocked(abi, opTmemSaveNextInv, ctrlReq{op: ctlSaveNextInv, cli: cli, size: uint32(hs), buf: cl.scratch.AddrAt(scratchRecord)}, "")
	if err != nil || rc == 0 {
		return PageHandle{}, false, err
	}
	h, err := abi.decodeHandle(rec)
	if err != nil {
		return PageHandle{}, false, fmt.Errorf("xenctl: %s: %w", opTmemSaveNextInv, err)
	}
	return h, true, nil
}

// SaveEnd ends a save: Xen restores the frozen state from before
// SaveBegin and drops the invalidation list. See [Client.SaveBegin] for
// the releases where it must follow a successful SaveBegin.
func (cl *Client) SaveEnd(cli uint16) error {
	_, err := cl.ctrl(opTmemSaveEnd, ctrlReq{op: ctlSaveEnd, cli: cli}, hintNoClient)
	return err
}

// RestoreBegin creates cli's tmem client for a restore. A domain that
// already has one fails with [ErrInvalid] (4.8+: -EEXIST; up to 4.7 a bare
// -1).
func (cl *Client) RestoreBegin(cli uint16) error {
	rc, err := cl.ctrl(opTmemRestoreBegin, ctrlReq{op: ctlRestoreBegin, cli: cli}, "")
	if err != nil {
		if cl.gen < GenC {
			err = withSentinel(err, hypercall.EPERM, ErrInvalid, "Xen answered -1: the domain already has a tmem client")
		}
		return err
	}
	if cl.gen < GenC && rc != 1 {
		return resultError(opTmemRestoreBegin, rc, "1")
	}
	return nil
}

// RestorePutPage stores page (exactly [PageSize] bytes) as (oid, index) in
// cli's pool, like a guest PUT. It allocates a hypercall buffer per call;
// [Client.RestoreDomain] reuses one.
func (cl *Client) RestorePutPage(cli uint16, pool int, oid [3]uint64, index uint32, page []byte) error {
	abi, err := cl.abi(opTmemRestorePut, haveTmem)
	if err != nil {
		return err
	}
	if len(page) != PageSize {
		return fmt.Errorf("xenctl: %s: %w: %d-byte page, want %d", opTmemRestorePut, ErrBadInput, len(page), PageSize)
	}
	buf, err := cl.c.Alloc(PageSize)
	if err != nil {
		return fmt.Errorf("xenctl: %s: %w", opTmemRestorePut, err)
	}
	defer buf.Close()
	return cl.restorePut(abi, buf, cli, pool, oid, index, page)
}

// restorePut is RestorePutPage with a caller-provided 4096-byte buffer.
func (cl *Client) restorePut(abi tmemABI, buf *hypercall.Buffer, cli uint16, pool int, oid [3]uint64, index uint32, page []byte) error {
	id, err := poolID(opTmemRestorePut, pool)
	if err != nil {
		return err
	}
	copy(buf.Bytes()[:PageSize], page)
	cl.mu.Lock()
	rc, err := cl.ctrlLocked(abi, opTmemRestorePut, ctrlReq{op: ctlRestorePutPage, cli: cli, pool: id, val: index, size: PageSize, oid: oid, buf: buf.Addr()}, "")
	cl.mu.Unlock()
	if err == nil && rc != 1 {
		err = resultError(opTmemRestorePut, rc, "1")
	}
	return err
}

// RestoreFlushPage flushes (oid, index) from cli's pool, like a guest
// FLUSH_PAGE: the receiving side's answer to [Client.SaveGetNextInv].
func (cl *Client) RestoreFlushPage(cli uint16, pool int, oid [3]uint64, index uint32) error {
	id, err := poolID(opTmemRestoreFlush, pool)
	if err != nil {
		return err
	}
	rc, err := cl.ctrl(opTmemRestoreFlush, ctrlReq{op: ctlRestoreFlushPage, cli: cli, pool: id, val: index, oid: oid}, "")
	if err == nil && rc != 1 {
		err = resultError(opTmemRestoreFlush, rc, "1")
	}
	return err
}
