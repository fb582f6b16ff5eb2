package xenctl

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The save stream of [Client.SaveDomain] and [Client.RestoreDomain]. It is
// this package's own format, not libxc's; all integers are little-endian.
//
//	header, 32 bytes
//	  0  magic    "XTMEMSAV"
//	  8  version  u32 = 1
//	  12 npools   u32, 0–16
//	  16 weight   u32
//	  20 cap      u32 (0 when saved from Xen 4.8+, which has no cap)
//	  24 flags    u32: bit 0 compress; other bits 0
//	  28 reserved u32 = 0
//	npools pool records, 32 bytes each (the layout of xen_tmem_pool_info)
//	  0  flags    u32: bit 0 persistent, bit 1 shared; other bits 0
//	  4  id       u32: slot 0–15, each at most once
//	  8  pages    u64: pages in the pool when saved (informational)
//	  16 uuid lo  u64
//	  24 uuid hi  u64
//	page records, one per page of a persistent pool
//	  0  pool     u32: id of a persistent pool record above
//	  4  index    u32
//	  8  oid      3 × u64
//	  32 data     4096 bytes
//	end record: 32 bytes, pool = 0xFFFFFFFF, everything else 0, no data
//
// Ephemeral pools are recreated empty (their pages may be evicted at any
// time anyway); pages invalidated during a live save are not recorded,
// since SaveDomain does a non-live save of a frozen client.

const (
	streamMagic      = "XTMEMSAV"
	streamVersion    = 1
	streamHeaderSize = 32
	streamRecordSize = 32 // pool records and page handles
	streamEnd        = 0xFFFFFFFF
	streamCompress   = 1 << 0
)

// saveStream is the header of a save stream.
type saveStream struct {
	Weight   uint32
	Cap      uint32
	Compress bool
	Pools    []PoolInfo
}

// appendStreamHeader appends the header and pool records of s.
func appendStreamHeader(b []byte, s saveStream) ([]byte, error) {
	if len(s.Pools) > tmemMaxPools {
		return nil, fmt.Errorf("%w: %d pools in a save stream (at most 16)", ErrBadInput, len(s.Pools))
	}
	le := binary.LittleEndian
	b = append(b, streamMagic...)
	b = le.AppendUint32(b, streamVersion)
	b = le.AppendUint32(b, uint32(len(s.Pools)))
	b = le.AppendUint32(b, s.Weight)
	b = le.AppendUint32(b, s.Cap)
	b = le.AppendUint32(b, b2u(s.Compress)*streamCompress)
	b = le.AppendUint32(b, 0)
	for _, p := range s.Pools {
		b = le.AppendUint32(b, uint32(p.Flags&(PoolPersistent|PoolShared)))
		b = le.AppendUint32(b, uint32(p.ID))
		b = le.AppendUint64(b, p.Pages)
		b = le.AppendUint64(b, p.UUID.Lo)
		b = le.AppendUint64(b, p.UUID.Hi)
	}
	return b, nil
}

// appendPageRecord appends the page record (h, page), or the end record
// when page is nil.
func appendPageRecord(b []byte, h PageHandle, page []byte) []byte {
	le := binary.LittleEndian
	if page == nil {
		return append(le.AppendUint32(b, streamEnd), make([]byte, streamRecordSize-4)...)
	}
	b = le.AppendUint32(b, h.Pool)
	b = le.AppendUint32(b, h.Index)
	for _, w := range h.OID {
		b = le.AppendUint64(b, w)
	}
	return append(b, page[:PageSize]...)
}

// streamReader decodes a save stream.
type streamReader struct {
	r          io.Reader
	persistent [tmemMaxPools]bool // pools whose pages may follow
	rec        [streamRecordSize]byte
	done       bool
}

func streamErr(format string, args ...any) error {
	return fmt.Errorf("%w: tmem save stream: "+format, append([]any{ErrBadInput}, args...)...)
}

// header reads and checks the header and the pool records.
func (sr *streamReader) header() (saveStream, error) {
	var h [streamHeaderSize]byte
	if _, err := io.ReadFull(sr.r, h[:]); err != nil {
		return saveStream{}, streamErr("header: %w", err)
	}
	le := binary.LittleEndian
	if string(h[:8]) != streamMagic {
		return saveStream{}, streamErr("bad magic %q", h[:8])
	}
	if v := le.Uint32(h[8:]); v != streamVersion {
		return saveStream{}, streamErr("version %d, want %d", v, streamVersion)
	}
	n := le.Uint32(h[12:])
	flags, reserved := le.Uint32(h[24:]), le.Uint32(h[28:])
	if n > tmemMaxPools || flags&^streamCompress != 0 || reserved != 0 {
		return saveStream{}, streamErr("header: %d pools, flags %#x, reserved %#x", n, flags, reserved)
	}
	s := saveStream{Weight: le.Uint32(h[16:]), Cap: le.Uint32(h[20:]), Compress: flags&streamCompress != 0}
	var seen [tmemMaxPools]bool
	for i := uint32(0); i < n; i++ {
		if _, err := io.ReadFull(sr.r, sr.rec[:]); err != nil {
			return saveStream{}, streamErr("pool record %d: %w", i, err)
		}
		b := sr.rec[:]
		p := PoolInfo{Flags: PoolFlags(le.Uint32(b)), Pages: le.Uint64(b[8:]), UUID: UUID{Lo: le.Uint64(b[16:]), Hi: le.Uint64(b[24:])}}
		id := le.Uint32(b[4:])
		if p.Flags&^(PoolPersistent|PoolShared) != 0 || id >= tmemMaxPools || seen[id] {
			return saveStream{}, streamErr("pool record %d: flags %#x, id %d", i, uint32(p.Flags), id)
		}
		seen[id], sr.persistent[id] = true, p.Persistent()
		p.ID = int(id)
		s.Pools = append(s.Pools, p)
	}
	return s, nil
}

// next reads the next page record into page (PageSize bytes); false at the
// end record.
func (sr *streamReader) next(page []byte) (PageHandle, bool, error) {
	if sr.done {
		return PageHandle{}, false, nil
	}
	if _, err := io.ReadFull(sr.r, sr.rec[:]); err != nil {
		return PageHandle{}, false, streamErr("page record: %w", err)
	}
	le := binary.LittleEndian
	b := sr.rec[:]
	h := PageHandle{Pool: le.Uint32(b), Index: le.Uint32(b[4:]), OID: [3]uint64{le.Uint64(b[8:]), le.Uint64(b[16:]), le.Uint64(b[24:])}}
	if h.Pool == streamEnd {
		if h != (PageHandle{Pool: streamEnd}) {
			return PageHandle{}, false, streamErr("end record with data %x", b)
		}
		sr.done = true
		return PageHandle{}, false, nil
	}
	if h.Pool >= tmemMaxPools || !sr.persistent[h.Pool] {
		return PageHandle{}, false, streamErr("page of pool %d, which is not a persistent pool of the stream", h.Pool)
	}
	if _, err := io.ReadFull(sr.r, page[:PageSize]); err != nil {
		return PageHandle{}, false, streamErr("page data: %w", err)
	}
	return h, true, nil
}

// SaveDomain writes cli's tmem client to w in the stream format above: its
// weight, cap and compress flag, its pools, and every page of its
// persistent pools. It brackets the work with SaveBegin and SaveEnd, so the
// client is frozen meanwhile and gets its freeze state back afterwards. A
// domain with no client or no pools gives a stream with no pools. ctx is
// checked between pages.
func (cl *Client) SaveDomain(ctx context.Context, cli uint16, w io.Writer) (err error) {
	abi, err := cl.abi(opTmemSaveDomain, haveTmem)
	if err != nil {
		return err
	}
	if cli == AllClients {
		return fmt.Errorf("xenctl: %s: %w: save one domain, not AllClients", opTmemSaveDomain, ErrBadInput)
	}
	started, err := cl.SaveBegin(cli, false)
	if err != nil {
		return err
	}
	var s saveStream
	if started {
		defer func() { err = errors.Join(err, cl.SaveEnd(cli)) }()
		info, err := cl.ClientInfo(cli)
		if err != nil {
			return err
		}
		s.Weight, s.Cap, s.Compress = info.Weight, info.Cap, info.Compress
		if s.Pools, err = cl.PoolInfo(cli); err != nil {
			return err
		}
	}
	out, err := appendStreamHeader(make([]byte, 0, streamHeaderSize+streamRecordSize*len(s.Pools)), s)
	if err != nil {
		return fmt.Errorf("xenctl: %s: %w", opTmemSaveDomain, err)
	}
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("xenctl: %s: %w", opTmemSaveDomain, err)
	}
	buf, err := cl.c.Alloc(tmemHandleSize + PageSize)
	if err != nil {
		return fmt.Errorf("xenctl: %s: %w", opTmemSaveDomain, err)
	}
	defer buf.Close()
	page := make([]byte, PageSize)
	rec := make([]byte, 0, streamRecordSize+PageSize)
	for _, p := range s.Pools {
		for p.Persistent() {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("xenctl: %s: %w", opTmemSaveDomain, err)
			}
			h, ok, err := cl.saveNextPage(abi, buf, cli, p.ID, page)
			if err != nil || !ok {
				if err != nil {
					return err
				}
				break
			}
			if h.Pool != uint32(p.ID) {
				return fmt.Errorf("xenctl: %s: %w: Xen returned a page of pool %d while saving pool %d", opTmemSaveDomain, ErrFailed, h.Pool, p.ID)
			}
			if _, err := w.Write(appendPageRecord(rec[:0], h, page)); err != nil {
				return fmt.Errorf("xenctl: %s: %w", opTmemSaveDomain, err)
			}
		}
	}
	if _, err := w.Write(appendPageRecord(rec[:0], PageHandle{}, nil)); err != nil {
		return fmt.Errorf("xenctl: %s: %w", opTmemSaveDomain, err)
	}
	return nil
}

// RestoreDomain recreates a client saved by [Client.SaveDomain] for cli,
// which must not have a tmem client yet: RestoreBegin, the pools in their
// saved slots ([Client.CreatePools]), weight and compression (and the cap,
// if non-zero, on Xen 4.0–4.7; later releases have none, so it is dropped),
// then every page with RESTORE_PUT_PAGE. A stream saved on any generation
// restores on any other, except that 4.0.0/4.0.1 accept only 64-bit object
// ids. Stream errors wrap [ErrBadInput]. ctx is checked between pages.
func (cl *Client) RestoreDomain(ctx context.Context, cli uint16, r io.Reader) error {
	abi, err := cl.abi(opTmemRestoreDom, haveTmem)
	if err != nil {
		return err
	}
	if cli == AllClients {
		return fmt.Errorf("xenctl: %s: %w: restore one domain, not AllClients", opTmemRestoreDom, ErrBadInput)
	}
	sr := &streamReader{r: r}
	s, err := sr.header()
	if err != nil {
		return fmt.Errorf("xenctl: %s: %w", opTmemRestoreDom, err)
	}
	if err := cl.RestoreBegin(cli); err != nil {
		return err
	}
	ids, err := cl.CreatePools(cli, s.Pools)
	if err != nil {
		return err
	}
	var slot [tmemMaxPools]int
	for i, p := range s.Pools {
		slot[p.ID] = ids[i]
	}
	if err := cl.restoreAttributes(cli, s); err != nil {
		return err
	}
	buf, err := cl.c.Alloc(PageSize)
	if err != nil {
		return fmt.Errorf("xenctl: %s: %w", opTmemRestoreDom, err)
	}
	defer buf.Close()
	page := make([]byte, PageSize)
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("xenctl: %s: %w", opTmemRestoreDom, err)
		}
		h, ok, err := sr.next(page)
		if err != nil {
			return fmt.Errorf("xenctl: %s: %w", opTmemRestoreDom, err)
		}
		if !ok {
			return nil
		}
		if err := cl.restorePut(abi, buf, cli, slot[h.Pool], h.OID, h.Index, page); err != nil {
			return err
		}
	}
}

// restoreAttributes sets the saved weight, compression and cap.
func (cl *Client) restoreAttributes(cli uint16, s saveStream) error {
	if cl.gen >= GenC {
		return cl.updateClientInfo(opTmemRestoreDom, cli, func(c *ClientInfo) {
			c.Weight, c.Compress = s.Weight, s.Compress
		})
	}
	if err := cl.SetWeight(cli, s.Weight); err != nil {
		return err
	}
	if err := cl.SetCompress(cli, s.Compress); err != nil {
		return err
	}
	if s.Cap != 0 {
		return cl.SetCap(cli, s.Cap)
	}
	return nil
}
