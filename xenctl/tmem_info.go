package xenctl

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/xentmem/xentmem/hypercall"
)

// ClientInfo describes one tmem client.
type ClientInfo struct {
	// Version is the struct xen_tmem_client version Xen reports (1) on
	// 4.8+; 0 on older releases, which have no such record.
	Version uint32
	// MaxPools is the number of pool slots per client (16).
	MaxPools int
	// Pools is the number of pools in use.
	Pools    int
	Weight   uint32
	Cap      uint32 // Xen 4.0–4.7; always 0 on 4.8+, which has no cap
	Compress bool
	Frozen   bool
	// Migrating is set during a live save. Only 4.8+ report it.
	Migrating bool
}

// PoolInfo describes one pool of a client.
type PoolInfo struct {
	ID    int       // slot, 0–15
	Flags PoolFlags // as Xen reports them
	Pages uint64    // pages now in the pool
	UUID  UUID      // shared pools; zero for private ones
}

// Persistent reports whether the pool is persistent.
func (p PoolInfo) Persistent() bool { return p.Flags.Persistent() }

// Shared reports whether the pool is shared.
func (p PoolInfo) Shared() bool { return p.Flags.Shared() }

const hintNoClientInval = "the domain has no tmem client (Xen answered -EINVAL)"

// ClientInfo returns the weight, cap, flags and pool count of cli.
//
// On Xen 4.8+ this is GET_CLIENT_INFO, which answers a domain without a
// tmem client (and [AllClients]) with a generic record {Version 1,
// MaxPools 16, everything else 0} rather than an error. Up to 4.7 it is
// the single-client LIST, parsed: the SAVE_GET_CLIENT_* sub-ops report the
// frozen state from before the last save and, before 4.1.4/4.2.1,
// dereference a NULL client inside Xen for a domain without one (XSA-15).
// There a domain without a tmem client fails with [ErrNoClient], and
// AllClients with [ErrBadInput].
func (cl *Client) ClientInfo(cli uint16) (ClientInfo, error) {
	abi, err := cl.abi(opTmemClientInfo, haveTmem)
	if err != nil {
		return ClientInfo{}, err
	}
	if cl.gen < GenC {
		if cli == AllClients {
			return ClientInfo{}, fmt.Errorf("xenctl: %s: %w: Xen %s reports one client at a time, not AllClients", opTmemClientInfo, ErrBadInput, cl.ver)
		}
		lc, err := cl.listClient(opTmemClientInfo, cli)
		return lc.info, err
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	rec, err := cl.getClientRecordLocked(abi, opTmemClientInfo, cli)
	if err != nil {
		return ClientInfo{}, err
	}
	return decodeClientRecord(rec)
}

// getClientRecordLocked issues GET_CLIENT_INFO into the scratch record
// area and returns it. cl.mu held.
func (cl *Client) getClientRecordLocked(abi tmemABI, name string, cli uint16) ([]byte, error) {
	page, err := cl.scratchPage(name)
	if err != nil {
		return nil, err
	}
	rec := page[scratchRecord : scratchRecord+tmemClientSize]
	clear(rec)
	// libxl passes len = 20; Xen ignores it.
	_, err = cl.ctrlLocked(abi, name, ctrlReq{op: ctlGetClientInfo, cli: cli, size: tmemClientSize, buf: cl.scratch.AddrAt(scratchRecord)}, "")
	return rec, err
}

// updateClientInfo is the 4.8+ way to change weight or compression:
// GET_CLIENT_INFO, change the record, SET_CLIENT_INFO with it.
func (cl *Client) updateClientInfo(name string, cli uint16, set func(*ClientInfo)) error {
	abi, err := cl.abi(name, haveTmem)
	if err != nil {
		return err
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	rec, err := cl.getClientRecordLocked(abi, name, cli)
	if err != nil {
		return err
	}
	c, err := decodeClientRecord(rec)
	if err != nil {
		return fmt.Errorf("xenctl: %s: %w", name, err)
	}
	set(&c)
	if err := encodeClientRecord(rec, c); err != nil {
		return fmt.Errorf("xenctl: %s: %w", name, err)
	}
	_, err = cl.ctrlLocked(abi, name, ctrlReq{op: ctlSetClientInfo, cli: cli, size: tmemClientSize, buf: cl.scratch.AddrAt(scratchRecord)}, "")
	return err
}

// PoolInfo returns the pools of cli (one domain) in slot order.
//
// On Xen 4.8+ this is GET_POOLS; a domain without a tmem client fails with
// [ErrNoClient]. Up to 4.7 it asks SAVE_GET_POOL_FLAGS for each of the 16
// slots and, for each pool found, SAVE_GET_POOL_NPAGES and (shared pools
// only) SAVE_GET_POOL_UUID; a domain without a client has no pools there.
// On 4.0.x, 4.1.0–4.1.3 and 4.2.0 SAVE_GET_POOL_UUID falls through into
// SAVE_END, which would thaw the client and end a save in progress, so
// there the uuids come from the client's LIST instead (its P= lines are in
// slot order).
func (cl *Client) PoolInfo(cli uint16) ([]PoolInfo, error) {
	abi, err := cl.abi(opTmemPoolInfo, haveTmem)
	if err != nil {
		return nil, err
	}
	if cli == AllClients {
		return nil, fmt.Errorf("xenctl: %s: %w: pools belong to one domain, not AllClients", opTmemPoolInfo, ErrBadInput)
	}
	if cl.gen >= GenC {
		return cl.poolInfoCD(abi, cli)
	}
	pools, needUUIDs, err := cl.poolInfoAB(abi, cli)
	if err != nil || !needUUIDs {
		return pools, err
	}
	lc, err := cl.listClient(opTmemPoolInfo, cli)
	if err != nil {
		return nil, err
	}
	if len(lc.uuids) != len(pools) {
		return nil, fmt.Errorf("xenctl: %s: %w: LIST shows %d pools for client %d, SAVE_GET_POOL_FLAGS %d", opTmemPoolInfo, ErrListFormat, len(lc.uuids), cli, len(pools))
	}
	for i := range pools {
		if pools[i].Shared() {
			pools[i].UUID = lc.uuids[i]
		}
	}
	return pools, nil
}

func (cl *Client) poolInfoCD(abi tmemABI, cli uint16) ([]PoolInfo, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	page, err := cl.scratchPage(opTmemPoolInfo)
	if err != nil {
		return nil, err
	}
	rec := page[scratchRecord : scratchRecord+tmemMaxPools*tmemPoolSize]
	clear(rec)
	rc, err := cl.ctrlLocked(abi, opTmemPoolInfo, ctrlReq{op: ctlGetPools, cli: cli, size: uint32(len(rec)), buf: cl.scratch.AddrAt(scratchRecord)}, "")
	if err != nil {
		return nil, withSentinel(err, hypercall.EINVAL, ErrNoClient, hintNoClientInval)
	}
	if rc > tmemMaxPools {
		return nil, resultError(opTmemPoolInfo, rc, "at most 16 records")
	}
	return decodePoolRecords(rec, int(rc))
}

// poolInfoAB walks the 16 slots with the SAVE_GET_POOL_* sub-ops. needUUIDs
// reports shared pools whose uuid must come from LIST.
func (cl *Client) poolInfoAB(abi tmemABI, cli uint16) (pools []PoolInfo, needUUIDs bool, err error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	page, err := cl.scratchPage(opTmemPoolInfo)
	if err != nil {
		return nil, false, err
	}
	uuidUnsafe := poolUUIDEndsSave(cl.ver)
	for slot := int32(0); slot < tmemMaxPools; slot++ {
		r := ctrlReq{op: ctlGetPoolFlags, cli: cli, pool: slot}
		flags, err := cl.ctrlLocked(abi, opTmemPoolInfo, r, "")
		if errors.Is(err, hypercall.EPERM) {
			continue // -1: no pool in this slot (or no client)
		} else if err != nil {
			return nil, false, err
		}
		r.op = ctlGetPoolNPages
		n, err := cl.ctrlLocked(abi, opTmemPoolInfo, r, "")
		if err != nil {
			return nil, false, err
		}
		p := PoolInfo{ID: int(slot), Flags: PoolFlags(flags), Pages: n}
		if p.Shared() && uuidUnsafe {
			needUUIDs = true
		} else if p.Shared() {
			rec := page[scratchRecord : scratchRecord+16]
			clear(rec)
			r.op, r.size, r.buf = ctlGetPoolUUID, 16, cl.scratch.AddrAt(scratchRecord)
			if _, err := cl.ctrlLocked(abi, opTmemPoolInfo, r, ""); err != nil {
				return nil, false, err
			}
			if p.UUID, err = decodePoolUUID(rec); err != nil {
				return nil, false, err
			}
		}
		pools = append(pools, p)
	}
	return pools, needUUIDs, nil
}

// poolUUIDEndsSave reports the releases whose SAVE_GET_POOL_UUID falls
// through into SAVE_END (fixed in 4.1.4 and 4.2.1; xen-tmem-abi.md §4.2).
// A release whose point number is unknown counts as affected.
func poolUUIDEndsSave(v Version) bool {
	if v.Major != 4 {
		return false
	}
	switch v.Minor {
	case 0:
		return true
	case 1:
		return v.Point() < 4
	case 2:
		return v.Point() < 1
	}
	return false
}

// CreatePools creates pools in cli's client, each in the slot its ID names,
// with its persistent and shared bits and uuid (other flag bits are
// replaced by the running generation's page size and spec version; Pages
// is ignored), and returns the ids Xen gave them, in order.
//
// On Xen 4.9+ this is one SET_POOLS, which also creates the client if
// needed; its return value is not a count (it is the last pool id if
// non-zero, else the number of records), so the ids are read back from the
// records Xen rewrote. Up to 4.8 it is one tmem_op TMEM_RESTORE_NEW per
// pool (hypercall 38), which needs an existing client ([Client.RestoreBegin]).
// A slot in use, bad flags or (4.5+) persistent+shared fail with -1. No
// pools means no call.
func (cl *Client) CreatePools(cli uint16, pools []PoolInfo) ([]int, error) {
	abi, err := cl.abi(opTmemCreatePools, haveCreatePools)
	if err != nil {
		return nil, err
	}
	if cli == AllClients || len(pools) > tmemMaxPools {
		return nil, fmt.Errorf("xenctl: %s: %w: want one domain and at most 16 pools, have client %d and %d pools", opTmemCreatePools, ErrBadInput, cli, len(pools))
	}
	for _, p := range pools {
		if p.ID < 0 || p.ID >= tmemMaxPools {
			return nil, fmt.Errorf("xenctl: %s: %w: pool id %d is not a slot 0–15", opTmemCreatePools, ErrBadInput, p.ID)
		}
	}
	if len(pools) == 0 {
		return nil, nil
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	page, err := cl.scratchPage(opTmemCreatePools)
	if err != nil {
		return nil, err
	}
	ids := make([]int, len(pools))
	if cl.gen < GenD {
		for i, p := range pools {
			rc, err := cl.creatLocked(abi, opTmemCreatePools, kindTmemControl, creatReq{
				cmd: hypercall.TMEM_RESTORE_NEW, pool: int32(p.ID), uuid: p.UUID,
				flags: uint32(poolFlags(p.Persistent(), p.Shared(), cl.gen)), arg1: uint32(cli),
			}, "client", int(cli))
			if err != nil {
				return nil, err
			}
			ids[i] = int(rc)
		}
		return ids, nil
	}
	rec := page[scratchRecord : scratchRecord+len(pools)*tmemPoolSize]
	for i, p := range pools {
		if err := encodePoolRecord(rec[i*tmemPoolSize:], poolFlags(p.Persistent(), p.Shared(), cl.gen), uint32(p.ID), p.UUID); err != nil {
			return nil, fmt.Errorf("xenctl: %s: %w", opTmemCreatePools, err)
		}
	}
	if _, err := cl.ctrlLocked(abi, opTmemCreatePools, ctrlReq{op: ctlSetPools, cli: cli, size: uint32(len(rec)), buf: cl.scratch.AddrAt(scratchRecord)}, ""); err != nil {
		return nil, err
	}
	back, err := decodePoolRecords(rec, len(pools))
	if err != nil {
		return nil, fmt.Errorf("xenctl: %s: %w", opTmemCreatePools, err)
	}
	for i, p := range back {
		ids[i] = p.ID
	}
	return ids, nil
}

// SharedAuth authorises (or, with authorise false, revokes) cli to create
// or join the shared pool uuid, and reports whether Xen changed something
// (it answers 1, or 0 for a revoke that matched nothing).
//
// Up to Xen 4.8 this is tmem_op TMEM_AUTH (cmd 101, hypercall 38); it
// matters only when Xen was booted with tmem_shared_auth, needs a domain
// that already is a tmem client ([ErrNoClient] otherwise), and cli =
// [AllClients] switches global authorisation on. From 4.9 it is sysctl
// SET_AUTH with one pool-info record (auth bit 0x4, or 0 to revoke); it
// creates the client if needed, and AllClients returns an *UnsupportedError
// (Xen would fail with -ENOMEM).
func (cl *Client) SharedAuth(cli uint16, uuid UUID, authorise bool) (bool, error) {
	abi, err := cl.abi(opTmemSharedAuth, haveTmem)
	if err != nil {
		return false, err
	}
	if cl.gen >= GenD && cli == AllClients {
		return false, &UnsupportedError{Op: opTmemSharedAuth + " for all clients (global authorisation)", Running: cl.ver, Have: haveGlobalAuth}
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	page, err := cl.scratchPage(opTmemSharedAuth)
	if err != nil {
		return false, err
	}
	var rc uint64
	if cl.gen >= GenD {
		rec := page[scratchRecord : scratchRecord+tmemPoolSize]
		if err := encodeAuthRecord(rec, uuid, authorise); err != nil {
			return false, fmt.Errorf("xenctl: %s: %w", opTmemSharedAuth, err)
		}
		rc, err = cl.ctrlLocked(abi, opTmemSharedAuth, ctrlReq{op: ctlSetAuth, cli: cli, size: tmemPoolSize, buf: cl.scratch.AddrAt(scratchRecord)}, "")
	} else {
		rc, err = cl.creatLocked(abi, opTmemSharedAuth, kindTmemControl, creatReq{
			cmd: hypercall.TMEM_AUTH, uuid: uuid, flags: b2u(authorise), arg1: uint32(cli),
		}, "client", int(cli))
		err = withSentinel(err, hypercall.EINVAL, ErrNoClient, "before Xen 4.9 a domain must have used tmem before it can be authorised")
	}
	if err != nil {
		return false, err
	}
	return rc == 1, nil
}

// withSentinel re-labels an *Error carrying errno with sentinel and hint.
func withSentinel(err error, errno hypercall.Errno, sentinel error, hint string) error {
	var e *Error
	if errors.As(err, &e) && e.Errno == errno {
		e.Sentinel, e.Hint = sentinel, hint
	}
	return err
}

// listClientLines is what ClientInfo and PoolInfo need from a LIST text.
type listClientLines struct {
	info  ClientInfo
	uuids []UUID // U0/U1 of each P= line, in slot order
}

// listClient issues the single-client short LIST for cli and parses it. A
// bare -1 means the domain has no tmem client.
func (cl *Client) listClient(name string, cli uint16) (listClientLines, error) {
	text, err := cl.list(name, cli, false, listBufferSize(cli, 1))
	if err != nil {
		return listClientLines{}, withSentinel(err, hypercall.EPERM, ErrNoClient, hintNoClient)
	}
	return parseListClient(text, cli)
}

// parseListClient reads the C= line of client cli (keys ww, ca, co, fr; a
// weight or cap of 2³¹ or more is printed negative) and the U0/U1 keys of
// the P= lines after it.
func parseListClient(text []byte, cli uint16) (listClientLines, error) {
	var out listClientLines
	found := false
	for n := 1; len(text) > 0; n++ {
		var line []byte
		line, text, _ = bytes.Cut(text, []byte{'\n'})
		tag, items, ok := bytes.Cut(line, []byte{'='})
		if !ok || len(tag) != 1 {
			if found {
				break
			}
			continue
		}
		switch {
		case tag[0] == 'C' && found:
			return out, nil
		case tag[0] == 'C':
			ci, err := listItemInt(items, "CI", n)
			if err != nil {
				return out, err
			}
			if ci != int64(cli) {
				continue
			}
			found = true
			out.info.MaxPools = tmemMaxPools
			for _, k := range [...]struct {
				key string
				dst *uint32
				opt bool
			}{{"ww", &out.info.Weight, false}, {"ca", &out.info.Cap, true}} {
				v, err := listItemInt(items, k.key, n)
				if err != nil && !(k.opt && errors.Is(err, errListNoKey)) {
					return out, err
				}
				*k.dst = uint32(v)
			}
			co, err1 := listItemInt(items, "co", n)
			fr, err2 := listItemInt(items, "fr", n)
			if err := errors.Join(err1, err2); err != nil {
				return out, err
			}
			out.info.Compress, out.info.Frozen = co != 0, fr != 0
		case tag[0] == 'P' && found:
			var u UUID
			for _, k := range [...]struct {
				key string
				dst *uint64
			}{{"U0", &u.Lo}, {"U1", &u.Hi}} {
				v, ok := listItem(items, k.key)
				x, err := strconv.ParseUint(string(v), 16, 64)
				if !ok || err != nil {
					return out, fmt.Errorf("%w: line %d: %s:%q is not hexadecimal", ErrListFormat, n, k.key, v)
				}
				*k.dst = x
			}
			out.uuids = append(out.uuids, u)
			out.info.Pools++
		case found:
			return out, nil
		}
	}
	if !found {
		return out, fmt.Errorf("%w: no C= line for client %d", ErrListFormat, cli)
	}
	return out, nil
}

var errListNoKey = errors.New("key missing")

// listItem returns the value of key in a comma-separated key:value list.
func listItem(items []byte, key string) ([]byte, bool) {
	for len(items) > 0 {
		var item []byte
		item, items, _ = bytes.Cut(items, []byte{','})
		if k, v, ok := bytes.Cut(item, []byte{':'}); ok && string(k) == key {
			return v, true
		}
	}
	return nil, false
}

// listItemInt returns key's value as a signed decimal (Xen prints weight
// and cap with %d).
func listItemInt(items []byte, key string, line int) (int64, error) {
	v, ok := listItem(items, key)
	if !ok {
		return 0, fmt.Errorf("%w: line %d: no %s: %w", ErrListFormat, line, key, errListNoKey)
	}
	x, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || x < -1<<31 || x >= 1<<32 {
		return 0, fmt.Errorf("%w: line %d: %s:%q is not a 32-bit decimal", ErrListFormat, line, key, v)
	}
	return x, nil
}
