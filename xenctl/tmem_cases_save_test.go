package xenctl

import (
	"bytes"
	"encoding/binary"

	"github.com/xentmem/xentmem/hypercall"
)

// tmemInfoCases are client and pool details, pool creation.
func tmemInfoCases() []tmemOpCase {
	recPool3 := tmemPoolRecs(3)
	return []tmemOpCase{
		{
			name: "client info",
			run:  func(cl *Client) (any, error) { return cl.ClientInfo(3) },
			reply: func(g Generation, _ int, c *tmemCall) (uint64, error) {
				if g <= GenB {
					copy(c.buf, tmemListC3+"\x00")
				} else {
					copy(c.buf, tmemClientBytes(1, 16, 2, 0x3, 7))
				}
				return 0, nil
			},
			want: func(g Generation) tmemExpect {
				return ctl(g, ab{sub: 4, cli: 3, arg1: listOneSize, ptr: true}, cd{cmd: 5, cli: 3, len: 20, ptr: true})
			},
			res: func(g Generation) any {
				if g <= GenB {
					return ClientInfo{MaxPools: 16, Pools: 2, Weight: 7, Cap: 100, Compress: true}
				}
				return ClientInfo{Version: 1, MaxPools: 16, Pools: 2, Weight: 7, Compress: true, Frozen: true}
			},
		},
		{
			name: "client info no client",
			run:  func(cl *Client) (any, error) { return cl.ClientInfo(7) },
			reply: func(g Generation, _ int, c *tmemCall) (uint64, error) {
				if g <= GenB {
					return 0, hypercall.EPERM
				}
				copy(c.buf, tmemClientBytes(1, 16, 0, 0, 0))
				return 0, nil
			},
			want: func(g Generation) tmemExpect {
				return ctl(g, ab{sub: 4, cli: 7, arg1: listOneSize, ptr: true}, cd{cmd: 5, cli: 7, len: 20, ptr: true})
			},
			res: res(ClientInfo{Version: 1, MaxPools: 16}),
			err: func(g Generation) error {
				if g <= GenB {
					return ErrNoClient
				}
				return nil
			},
		},
		{
			name:  "pool info",
			run:   func(cl *Client) (any, error) { return cl.PoolInfo(3) },
			reply: poolInfoReply,
			want:  poolInfoWant,
			res: func(g Generation) any {
				return []PoolInfo{{ID: 0, Flags: PoolFlags(specFlags(g, 0)), Pages: 5},
					{ID: 2, Flags: PoolFlags(specFlags(g, 0x2)), Pages: 9, UUID: tmemU}}
			},
		},
		{
			name:  "pool info no client",
			run:   func(cl *Client) (any, error) { return cl.PoolInfo(7) },
			reply: fail(hypercall.EPERM),
			want: func(g Generation) tmemExpect {
				if g <= GenB {
					var e tmemExpect
					for slot := uint64(0); slot < 16; slot++ {
						e.calls = append(e.calls, ab{sub: 16, pool: slot, cli: 7}.want(g))
					}
					return e
				}
				return calls(cd{cmd: 7, cli: 7, len: 512, ptr: true}.want(g))
			},
			err: func(g Generation) error {
				if g <= GenB {
					return nil // Xen cannot tell "no client" from "no pools"
				}
				return ErrFailed // -1 is not GET_POOLS' "no client" (-EINVAL)
			},
		},
		{
			name:  "pool info no client (4.8+ EINVAL)",
			run:   func(cl *Client) (any, error) { return cl.PoolInfo(7) },
			reply: fail(hypercall.EINVAL),
			want: func(g Generation) tmemExpect {
				if g <= GenB {
					return tmemExpect{calls: []tmemWant{ab{sub: 16, cli: 7}.want(g)}}
				}
				return calls(cd{cmd: 7, cli: 7, len: 512, ptr: true}.want(g))
			},
			err: func(g Generation) error {
				if g <= GenB {
					return ErrInvalid
				}
				return ErrNoClient
			},
		},
		{
			name: "create pools",
			run: func(cl *Client) (any, error) {
				return cl.CreatePools(3, []PoolInfo{{ID: 0}, {ID: 1, Flags: PoolPersistent}, {ID: 2, Flags: PoolShared, UUID: tmemU}})
			},
			reply: func(g Generation, _ int, c *tmemCall) (uint64, error) {
				if c.op == hypercall.OpTmem {
					return uint64(c.u32(4)), nil // the slot asked for
				}
				return 2, nil // the last pool id, records left as they are
			},
			want: func(g Generation) tmemExpect {
				if g <= GenC {
					return calls(creat(g, F{"cmd": 102, "pool_id": 0, "flags": specFlags(g, 0), "arg1": 3}),
						creat(g, F{"cmd": 102, "pool_id": 1, "flags": specFlags(g, 1), "arg1": 3}),
						creat(g, F{"cmd": 102, "pool_id": 2, "flags": specFlags(g, 2), "arg1": 3, "uuid[0]": tmemU.Lo, "uuid[1]": tmemU.Hi}))
				}
				return calls(cd{cmd: 9, cli: 3, len: 96, ptr: true, bufL: &recPool3, bufF: F{
					"[0].flags": 0x01000000, "[0].id": 0, "[1].flags": 0x01000001, "[1].id": 1,
					"[2].flags": 0x01000002, "[2].id": 2, "[2].uuid[0]": tmemU.Lo, "[2].uuid[1]": tmemU.Hi}}.want(g))
			},
			none: haveCreatePools,
			res:  res([]int{0, 1, 2}),
		},
		{
			name: "create pools bad slot",
			run:  func(cl *Client) (any, error) { return cl.CreatePools(3, []PoolInfo{{ID: 16}}) },
			want: func(Generation) tmemExpect { return calls() },
			none: haveCreatePools,
			err:  is(ErrBadInput),
		},
	}
}

// tmemSaveCases are the save and restore sub-ops.
func tmemSaveCases() []tmemOpCase {
	return []tmemOpCase{
		// Save and restore (§4.2 sub-ops 10–33, §6.4).
		{
			name: "save begin live",
			run:  func(cl *Client) (any, error) { return cl.SaveBegin(3, true) },
			reply: func(g Generation, _ int, _ *tmemCall) (uint64, error) {
				if g <= GenB {
					return 1, nil
				}
				return 0, nil
			},
			want: func(g Generation) tmemExpect {
				return ctl(g, ab{sub: 10, cli: 3, arg1: 1}, cd{cmd: 10, cli: 3, arg: 1})
			},
			res: res(true),
		},
		{
			name: "save begin nothing to save",
			run:  func(cl *Client) (any, error) { return cl.SaveBegin(3, false) },
			reply: func(g Generation, _ int, _ *tmemCall) (uint64, error) {
				if g <= GenB {
					return 0, nil
				}
				return 0, hypercall.ENOENT
			},
			want: func(g Generation) tmemExpect { return ctl(g, ab{sub: 10, cli: 3}, cd{cmd: 10, cli: 3}) },
			res:  res(false),
		},
		{
			name: "save get next page",
			run: func(cl *Client) (any, error) {
				page := make([]byte, PageSize)
				h, ok, err := cl.SaveGetNextPage(3, 1, page)
				return tmemPageResult{h, ok, [2]byte{page[0], page[PageSize-1]}}, err
			},
			reply: func(g Generation, _ int, c *tmemCall) (uint64, error) {
				hb := tmemHandleBytes(g, 1, 42, saveOID(g))
				copy(c.buf, hb)
				copy(c.buf[len(hb):], tmemPattern(1))
				return 1, nil
			},
			want: func(g Generation) tmemExpect {
				size := uint64(32 + 4096)
				if g == GenA0 {
					size = 16 + 4096
				}
				return ctl(g, ab{sub: 19, pool: 1, cli: 3, arg1: size, ptr: true}, cd{cmd: 19, pool: 1, cli: 3, len: size, ptr: true})
			},
			res: func(g Generation) any {
				p := tmemPattern(1)
				return tmemPageResult{PageHandle{Pool: 1, Index: 42, OID: saveOID(g)}, true, [2]byte{p[0], p[PageSize-1]}}
			},
		},
		{
			name: "save get next page done",
			run: func(cl *Client) (any, error) {
				_, ok, err := cl.SaveGetNextPage(3, 1, make([]byte, PageSize))
				return ok, err
			},
			reply: fail(hypercall.EPERM),
			want: func(g Generation) tmemExpect {
				size := uint64(32 + 4096)
				if g == GenA0 {
					size = 16 + 4096
				}
				return ctl(g, ab{sub: 19, pool: 1, cli: 3, arg1: size, ptr: true}, cd{cmd: 19, pool: 1, cli: 3, len: size, ptr: true})
			},
			res: res(false),
		},
		{
			name: "save get next invalidation",
			run: func(cl *Client) (any, error) {
				h, ok, err := cl.SaveGetNextInv(3)
				return tmemPageResult{H: h, OK: ok}, err
			},
			reply: func(g Generation, _ int, c *tmemCall) (uint64, error) {
				copy(c.buf, tmemHandleBytes(g, 1, 43, saveOID(g)))
				return 1, nil
			},
			want: func(g Generation) tmemExpect {
				size := uint64(32)
				if g == GenA0 {
					size = 16
				}
				return ctl(g, ab{sub: 20, cli: 3, arg1: size, ptr: true}, cd{cmd: 20, cli: 3, len: size, ptr: true})
			},
			res: func(g Generation) any {
				return tmemPageResult{H: PageHandle{Pool: 1, Index: 43, OID: saveOID(g)}, OK: true}
			},
		},
		{
			name: "save get next invalidation done",
			run: func(cl *Client) (any, error) {
				_, ok, err := cl.SaveGetNextInv(3)
				return ok, err
			},
			want: func(g Generation) tmemExpect {
				size := uint64(32)
				if g == GenA0 {
					size = 16
				}
				return ctl(g, ab{sub: 20, cli: 3, arg1: size, ptr: true}, cd{cmd: 20, cli: 3, len: size, ptr: true})
			},
			res: res(false),
		},
		{
			name: "save end",
			run:  func(cl *Client) (any, error) { return nil, cl.SaveEnd(3) },
			want: func(g Generation) tmemExpect { return ctl(g, ab{sub: 21, cli: 3}, cd{cmd: 21, cli: 3}) },
		},
		{
			name: "restore begin",
			run:  func(cl *Client) (any, error) { return nil, cl.RestoreBegin(3) },
			reply: func(g Generation, _ int, _ *tmemCall) (uint64, error) {
				if g <= GenB {
					return 1, nil
				}
				return 0, nil
			},
			want: func(g Generation) tmemExpect { return ctl(g, ab{sub: 30, cli: 3}, cd{cmd: 30, cli: 3}) },
		},
		{
			name: "restore begin client exists",
			run:  func(cl *Client) (any, error) { return nil, cl.RestoreBegin(3) },
			reply: func(g Generation, _ int, _ *tmemCall) (uint64, error) {
				if g <= GenB {
					return 0, hypercall.EPERM
				}
				return 0, hypercall.EEXIST
			},
			want: func(g Generation) tmemExpect { return ctl(g, ab{sub: 30, cli: 3}, cd{cmd: 30, cli: 3}) },
			err:  is(ErrInvalid),
		},
		{
			name: "restore put page",
			run:  func(cl *Client) (any, error) { return nil, cl.RestorePutPage(3, 1, tmemOID1, 42, tmemPattern(2)) },
			reply: func(_ Generation, _ int, c *tmemCall) (uint64, error) {
				if !bytes.Equal(c.sent, tmemPattern(2)) {
					return 0, hypercall.EINVAL
				}
				return 1, nil
			},
			want: func(g Generation) tmemExpect {
				return ctl(g, ab{sub: 32, pool: 1, cli: 3, arg1: 4096, arg2: 42, oid: tmemOID1, ptr: true},
					cd{cmd: 32, pool: 1, cli: 3, len: 4096, arg: 42, oid: tmemOID1, ptr: true})
			},
		},
		{
			name:  "restore flush page",
			run:   func(cl *Client) (any, error) { return nil, cl.RestoreFlushPage(3, 1, tmemOID1, 43) },
			reply: rc(1),
			want: func(g Generation) tmemExpect {
				return ctl(g, ab{sub: 33, pool: 1, cli: 3, arg2: 43, oid: tmemOID1}, cd{cmd: 33, pool: 1, cli: 3, arg: 43, oid: tmemOID1})
			},
		},
	}
}

// saveOID is the object id the fake's save handles carry on g.
func saveOID(g Generation) [3]uint64 {
	if g == GenA0 {
		return tmemOID1
	}
	return tmemOID3
}

// poolInfoReply plays a client with pool 0 (ephemeral, 5 pages) and pool 2
// (ephemeral shared, 9 pages, uuid tmemU).
func poolInfoReply(g Generation, _ int, c *tmemCall) (uint64, error) {
	if g >= GenC {
		copy(c.buf, tmemPoolBytes(uint32(specFlags(g, 0)), 0, 5, UUID{}))
		copy(c.buf[32:], tmemPoolBytes(uint32(specFlags(g, 2)), 2, 9, tmemU))
		return 2, nil
	}
	sub, pool := tmemSub(c)
	switch {
	case sub == 16 && pool == 0:
		return specFlags(g, 0), nil
	case sub == 16 && pool == 2:
		return specFlags(g, 2), nil
	case sub == 17 && pool == 0:
		return 5, nil
	case sub == 17 && pool == 2:
		return 9, nil
	case sub == 18 && pool == 2:
		le := binary.LittleEndian
		copy(c.buf, le.AppendUint64(le.AppendUint64(nil, tmemU.Lo), tmemU.Hi))
		return 0, nil
	case sub == 4: // LIST, on releases whose SAVE_GET_POOL_UUID ends a save
		copy(c.buf, "C=CI:3,ww:0,ca:0,co:0,fr:0,Tc:0,Ge:0,Pp:0,Gp:0\nP=CI:3,PI:0,PT:EP,U0:0,U1:0\n"+
			"P=CI:3,PI:2,PT:ES,U0:8899aabbccddeeff,U1:11223344556677\n\x00")
		return 0, nil
	}
	return 0, hypercall.EPERM
}

func poolInfoWant(g Generation) tmemExpect {
	if g >= GenC {
		return calls(cd{cmd: 7, cli: 3, len: 512, ptr: true}.want(g))
	}
	var e tmemExpect
	for slot := uint64(0); slot < 16; slot++ {
		e.calls = append(e.calls, ab{sub: 16, pool: slot, cli: 3}.want(g))
		if slot != 0 && slot != 2 {
			continue
		}
		e.calls = append(e.calls, ab{sub: 17, pool: slot, cli: 3}.want(g))
		if slot == 2 && g != GenA0 { // 4.0.1 takes uuids from LIST
			e.calls = append(e.calls, ab{sub: 18, pool: slot, cli: 3, arg1: 16, ptr: true}.want(g))
		}
	}
	if g == GenA0 {
		e.calls = append(e.calls, ab{sub: 4, cli: 3, arg1: listOneSize, ptr: true}.want(g))
	}
	return e
}
