package xenctl

import (
	"bytes"
	"encoding/binary"

	"github.com/xentmem/xentmem/hypercall"
)

// tmemSub returns the sub-op and pool_id of a control call.
func tmemSub(c *tmemCall) (sub uint32, pool int32) {
	if c.op == hypercall.OpSysctl {
		return c.u32(8), int32(c.u32(12))
	}
	return c.u32(8), int32(c.u32(4))
}

const tmemListC3 = "C=CI:3,ww:7,ca:100,co:1,fr:0,Tc:0,Ge:0,Pp:0,Gp:0\nP=CI:3,PI:0,PT:EP,U0:0,U1:0\nP=CI:3,PI:1,PT:PP,U0:0,U1:0\n"

// tmemClientBytes is a struct xen_tmem_client as Xen writes it.
func tmemClientBytes(version, maxpools, nr, flags, weight uint32) []byte {
	le := binary.LittleEndian
	return le.AppendUint32(le.AppendUint32(le.AppendUint32(le.AppendUint32(le.AppendUint32(nil,
		version), maxpools), nr), flags), weight)
}

// tmemPoolBytes is a struct xen_tmem_pool_info as Xen writes it.
func tmemPoolBytes(flags, id uint32, pages uint64, u UUID) []byte {
	le := binary.LittleEndian
	return le.AppendUint64(le.AppendUint64(le.AppendUint64(le.AppendUint32(le.AppendUint32(nil,
		flags), id), pages), u.Lo), u.Hi)
}

// tmemHandleBytes is a struct tmem_handle for g.
func tmemHandleBytes(g Generation, pool, index uint32, oid [3]uint64) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(le.AppendUint32(nil, pool), index)
	if g == GenA0 {
		return le.AppendUint64(b, oid[0])
	}
	return le.AppendUint64(le.AppendUint64(le.AppendUint64(b, oid[0]), oid[1]), oid[2])
}

func tmemText(s string) func(Generation, int, *tmemCall) (uint64, error) {
	return func(_ Generation, _ int, c *tmemCall) (uint64, error) {
		copy(c.buf, s+"\x00")
		return 0, nil
	}
}

// tmemPattern is a page whose bytes say which page it is.
func tmemPattern(seed byte) []byte {
	p := make([]byte, PageSize)
	for i := range p {
		p[i] = seed + byte(i*7)
	}
	return p
}

type tmemPageResult struct {
	H      PageHandle
	OK     bool
	Sample [2]byte // first and last byte of the page
}

// tmemOpCases is every operation case, in golden-file order.
func tmemOpCases() []tmemOpCase {
	return append(append(tmemGuestControlCases(), tmemInfoCases()...), tmemSaveCases()...)
}

// tmemGuestControlCases are the guest page operations and the one-call
// control operations.
func tmemGuestControlCases() []tmemOpCase {
	recPool1 := tmemPoolRecs(1)
	client := tmemClientRec
	return []tmemOpCase{
		// Guest operations (§3): hypercall 38 on every generation.
		{
			name:  "new pool persistent",
			run:   func(cl *Client) (any, error) { return cl.NewPool(PoolSpec{Persistent: true}) },
			reply: rc(1),
			want: func(g Generation) tmemExpect {
				return calls(creat(g, F{"cmd": 1, "flags": specFlags(g, 0x1)}))
			},
			res: res(1),
		},
		{
			name:  "new pool shared uuid",
			run:   func(cl *Client) (any, error) { return cl.NewPool(PoolSpec{Shared: true, UUID: tmemU}) },
			reply: rc(2),
			want: func(g Generation) tmemExpect {
				return calls(creat(g, F{"cmd": 1, "flags": specFlags(g, 0x2), "uuid[0]": tmemU.Lo, "uuid[1]": tmemU.Hi}))
			},
			res: res(2),
		},
		{
			name:  "new pool refused",
			run:   func(cl *Client) (any, error) { return cl.NewPoolFlags(0x01000003, UUID{}) },
			reply: fail(hypercall.EPERM),
			want:  func(g Generation) tmemExpect { return calls(creat(g, F{"cmd": 1, "flags": 0x01000003})) },
			err:   is(ErrFailed),
		},
		{
			name:  "destroy pool never created",
			run:   func(cl *Client) (any, error) { return cl.DestroyPool(5) },
			reply: rc(0),
			want:  func(g Generation) tmemExpect { return calls(pageOp(g, 2, 5, [3]uint64{}, 0, 0)) },
			res:   res(false),
		},
		{
			name:  "put page",
			run:   func(cl *Client) (any, error) { return nil, cl.PutPage(1, tmemOID1, 42, 0xabcde) },
			reply: rc(1),
			want:  func(g Generation) tmemExpect { return calls(pageOp(g, 4, 1, tmemOID1, 42, 0xabcde)) },
		},
		{
			name:  "put page 192-bit object id",
			run:   func(cl *Client) (any, error) { return nil, cl.PutPage(1, tmemOID3, 42, 0xabcde) },
			reply: rc(1),
			want: func(g Generation) tmemExpect {
				if g == GenA0 {
					return calls()
				}
				return calls(pageOp(g, 4, 1, tmemOID3, 42, 0xabcde))
			},
			err: func(g Generation) error {
				if g == GenA0 {
					return ErrBadInput
				}
				return nil
			},
		},
		{
			name:  "put page frozen",
			run:   func(cl *Client) (any, error) { return nil, cl.PutPage(1, tmemOID1, 42, 0xabcde) },
			reply: fail(hypercall.EFROZEN),
			want:  func(g Generation) tmemExpect { return calls(pageOp(g, 4, 1, tmemOID1, 42, 0xabcde)) },
			err:   is(ErrFrozen),
		},
		{
			name:  "get page hit",
			run:   func(cl *Client) (any, error) { return cl.GetPage(1, tmemOID1, 42, 0xbcdef) },
			reply: rc(1),
			want:  func(g Generation) tmemExpect { return calls(pageOp(g, 5, 1, tmemOID1, 42, 0xbcdef)) },
			res:   res(true),
		},
		{
			name:  "get page miss",
			run:   func(cl *Client) (any, error) { return cl.GetPage(1, tmemOID1, 99, 0xbcdef) },
			reply: rc(0),
			want:  func(g Generation) tmemExpect { return calls(pageOp(g, 5, 1, tmemOID1, 99, 0xbcdef)) },
			res:   res(false),
		},
		{
			name:  "get page empty pool",
			run:   func(cl *Client) (any, error) { return cl.GetPage(1, tmemOID1, 42, 0xbcdef) },
			reply: fail(hypercall.EEMPTY),
			want:  func(g Generation) tmemExpect { return calls(pageOp(g, 5, 1, tmemOID1, 42, 0xbcdef)) },
			err:   is(ErrEmpty),
		},
		{
			name:  "get page no pool",
			run:   func(cl *Client) (any, error) { return cl.GetPage(15, tmemOID1, 42, 0xbcdef) },
			reply: fail(hypercall.ENODEV),
			want:  func(g Generation) tmemExpect { return calls(pageOp(g, 5, 15, tmemOID1, 42, 0xbcdef)) },
			err:   is(ErrNoPool),
		},
		{
			name:  "flush page",
			run:   func(cl *Client) (any, error) { return nil, cl.FlushPage(1, tmemOID1, 43) },
			reply: rc(1),
			want:  func(g Generation) tmemExpect { return calls(pageOp(g, 6, 1, tmemOID1, 43, 0)) },
		},
		{
			name:  "flush object",
			run:   func(cl *Client) (any, error) { return nil, cl.FlushObject(1, tmemOID1) },
			reply: rc(1),
			want:  func(g Generation) tmemExpect { return calls(pageOp(g, 7, 1, tmemOID1, 0, 0)) },
		},

		// Control operations (§4, §5, §6; cheat sheet §6.6).
		{
			name: "list all short",
			run: func(cl *Client) (any, error) {
				b, err := cl.List(AllClients, false)
				return string(b), err
			},
			reply: tmemText("G=Tt:7,Te:5\nT\n"),
			want: func(g Generation) tmemExpect {
				return ctl(g, ab{sub: 4, cli: 0xFFFF, arg1: listAllSize, ptr: true}, cd{cmd: 4, cli: 0xFFFF, len: listAllSize, ptr: true})
			},
			res: res("G=Tt:7,Te:5\nT\n"),
		},
		{
			name: "list client long",
			run: func(cl *Client) (any, error) {
				b, err := cl.List(3, true)
				return string(b), err
			},
			reply: tmemText(tmemListC3),
			want: func(g Generation) tmemExpect {
				return ctl(g, ab{sub: 4, cli: 3, arg1: listOneSize, arg2: 1, ptr: true}, cd{cmd: 4, cli: 3, len: listOneSize, arg: 1, ptr: true})
			},
			res: res(tmemListC3),
		},
		{
			name:  "list no client",
			run:   func(cl *Client) (any, error) { return cl.List(3, false) },
			reply: fail(hypercall.EPERM),
			want: func(g Generation) tmemExpect {
				return ctl(g, ab{sub: 4, cli: 3, arg1: listOneSize, ptr: true}, cd{cmd: 4, cli: 3, len: listOneSize, ptr: true})
			},
			err: is(ErrFailed),
		},
		{
			name: "list overrun",
			run:  func(cl *Client) (any, error) { return cl.List(3, false) },
			reply: func(_ Generation, _ int, c *tmemCall) (uint64, error) {
				copy(c.buf, bytes.Repeat([]byte{'x'}, len(c.buf)))
				return 0, nil
			},
			want: func(g Generation) tmemExpect {
				return ctl(g, ab{sub: 4, cli: 3, arg1: listOneSize, ptr: true}, cd{cmd: 4, cli: 3, len: listOneSize, ptr: true})
			},
			err: is(ErrListFormat),
		},
		{
			name: "freeze",
			run:  func(cl *Client) (any, error) { return nil, cl.Freeze(3) },
			want: func(g Generation) tmemExpect { return ctl(g, ab{sub: 1, cli: 3}, cd{cmd: 1, cli: 3}) },
		},
		{
			name: "freeze all",
			run:  func(cl *Client) (any, error) { return nil, cl.Freeze(AllClients) },
			want: func(g Generation) tmemExpect { return ctl(g, ab{sub: 1, cli: 0xFFFF}, cd{cmd: 1, cli: 0xFFFF}) },
		},
		{
			name:  "freeze no client",
			run:   func(cl *Client) (any, error) { return nil, cl.Freeze(7) },
			reply: fail(hypercall.EPERM),
			want:  func(g Generation) tmemExpect { return ctl(g, ab{sub: 1, cli: 7}, cd{cmd: 1, cli: 7}) },
			err:   is(ErrFailed),
		},
		{
			name:  "freeze no tmem",
			run:   func(cl *Client) (any, error) { return nil, cl.Freeze(3) },
			reply: fail(hypercall.ENOSYS),
			want:  func(g Generation) tmemExpect { return ctl(g, ab{sub: 1, cli: 3}, cd{cmd: 1, cli: 3}) },
			err:   is(ErrNoTmem),
		},
		{
			name: "thaw",
			run:  func(cl *Client) (any, error) { return nil, cl.Thaw(3) },
			want: func(g Generation) tmemExpect { return ctl(g, ab{sub: 0, cli: 3}, cd{cmd: 0, cli: 3}) },
		},
		{
			name: "destroy (thaws)",
			run:  func(cl *Client) (any, error) { return nil, cl.Destroy(3) },
			want: func(g Generation) tmemExpect { return ctl(g, ab{sub: 3, cli: 3}, cd{cmd: 3, cli: 3}) },
		},
		{
			name:  "flush 1024 KiB",
			run:   func(cl *Client) (any, error) { return cl.Flush(AllClients, 1024) },
			reply: rc(1028),
			want: func(g Generation) tmemExpect {
				return ctl(g, ab{sub: 2, cli: 0xFFFF, arg1: 1024}, cd{cmd: 2, cli: 0xFFFF, arg: 1024})
			},
			res: res(uint64(1028)),
		},
		{
			name: "flush one domain",
			run:  func(cl *Client) (any, error) { return cl.Flush(3, 1024) },
			want: func(Generation) tmemExpect { return calls() },
			err:  is(ErrBadInput),
		},
		{
			name:  "query freeable",
			run:   func(cl *Client) (any, error) { return cl.QueryFreeableMiB() },
			reply: rc(6),
			want:  func(g Generation) tmemExpect { return ctl(g, ab{sub: 8}, cd{cmd: 8}) },
			res:   res(uint64(6)),
		},
		{
			name:  "query freeable wrong interface version",
			run:   func(cl *Client) (any, error) { return cl.QueryFreeableMiB() },
			reply: fail(hypercall.EACCES),
			want:  func(g Generation) tmemExpect { return ctl(g, ab{sub: 8}, cd{cmd: 8}) },
			err:   is(ErrInterfaceVersion),
		},
		{
			name: "set weight",
			run:  func(cl *Client) (any, error) { return nil, cl.SetWeight(3, 7) },
			reply: func(g Generation, n int, c *tmemCall) (uint64, error) {
				if g >= GenC && n == 0 {
					copy(c.buf, tmemClientBytes(1, 16, 2, 0x2, 0)) // compress on, weight 0
				}
				return 0, nil
			},
			want: func(g Generation) tmemExpect {
				if g <= GenB {
					return calls(ab{sub: 5, cli: 3, arg1: 7}.want(g))
				}
				return calls(cd{cmd: 5, cli: 3, len: 20, ptr: true}.want(g),
					cd{cmd: 6, cli: 3, len: 20, ptr: true, bufL: &client, bufF: F{"version": 1, "maxpools": 16, "nr_pools": 2, "flags": 0x2, "weight": 7}}.want(g))
			},
		},
		{
			name: "set weight all clients",
			run:  func(cl *Client) (any, error) { return nil, cl.SetWeight(AllClients, 7) },
			reply: func(g Generation, n int, c *tmemCall) (uint64, error) {
				if g >= GenC && n == 0 {
					copy(c.buf, tmemClientBytes(1, 16, 0, 0, 0)) // Xen's generic record for "all"
				}
				return 0, nil
			},
			want: func(g Generation) tmemExpect {
				if g <= GenB {
					return calls(ab{sub: 5, cli: 0xFFFF, arg1: 7}.want(g))
				}
				return calls(cd{cmd: 5, cli: 0xFFFF, len: 20, ptr: true}.want(g),
					cd{cmd: 6, cli: 0xFFFF, len: 20, ptr: true, bufL: &client, bufF: F{"version": 1, "maxpools": 16, "weight": 7}}.want(g))
			},
		},
		{
			name: "set weight no client",
			run:  func(cl *Client) (any, error) { return nil, cl.SetWeight(7, 7) },
			reply: func(g Generation, n int, c *tmemCall) (uint64, error) {
				switch {
				case g <= GenB:
					return 0, hypercall.EPERM
				case n == 0:
					copy(c.buf, tmemClientBytes(1, 16, 0, 0, 0))
					return 0, nil
				}
				return 0, hypercall.ENOENT
			},
			want: func(g Generation) tmemExpect {
				if g <= GenB {
					return calls(ab{sub: 5, cli: 7, arg1: 7}.want(g))
				}
				return calls(cd{cmd: 5, cli: 7, len: 20, ptr: true}.want(g),
					cd{cmd: 6, cli: 7, len: 20, ptr: true, bufL: &client, bufF: F{"version": 1, "maxpools": 16, "weight": 7}}.want(g))
			},
			err: func(g Generation) error {
				if g <= GenB {
					return ErrFailed
				}
				return ErrNoClient
			},
		},
		{
			name: "set cap",
			run:  func(cl *Client) (any, error) { return nil, cl.SetCap(3, 100) },
			want: func(g Generation) tmemExpect {
				if g <= GenB {
					return calls(ab{sub: 6, cli: 3, arg1: 100}.want(g))
				}
				return unsupported("4.0–4.7")
			},
			none: "4.0–4.7",
		},
		{
			name: "set compress on",
			run:  func(cl *Client) (any, error) { return nil, cl.SetCompress(3, true) },
			reply: func(g Generation, n int, c *tmemCall) (uint64, error) {
				if g >= GenC && n == 0 {
					copy(c.buf, tmemClientBytes(1, 16, 2, 0x1, 7)) // frozen, weight 7
				}
				return 0, nil
			},
			want: func(g Generation) tmemExpect {
				if g <= GenB {
					return calls(ab{sub: 7, cli: 3, arg1: 1}.want(g))
				}
				return calls(cd{cmd: 5, cli: 3, len: 20, ptr: true}.want(g),
					cd{cmd: 6, cli: 3, len: 20, ptr: true, bufL: &client, bufF: F{"version": 1, "maxpools": 16, "nr_pools": 2, "flags": 0x3, "weight": 7}}.want(g))
			},
		},
		{
			name: "set compress off",
			run:  func(cl *Client) (any, error) { return nil, cl.SetCompress(3, false) },
			reply: func(g Generation, n int, c *tmemCall) (uint64, error) {
				if g >= GenC && n == 0 {
					copy(c.buf, tmemClientBytes(1, 16, 2, 0x3, 7))
				}
				return 0, nil
			},
			want: func(g Generation) tmemExpect {
				if g <= GenB {
					return calls(ab{sub: 7, cli: 3, arg1: 0}.want(g))
				}
				return calls(cd{cmd: 5, cli: 3, len: 20, ptr: true}.want(g),
					cd{cmd: 6, cli: 3, len: 20, ptr: true, bufL: &client, bufF: F{"version": 1, "maxpools": 16, "nr_pools": 2, "flags": 0x1, "weight": 7}}.want(g))
			},
		},
		{
			name:  "shared auth",
			run:   func(cl *Client) (any, error) { return cl.SharedAuth(3, tmemU, true) },
			reply: rc(1),
			want: func(g Generation) tmemExpect {
				if g <= GenC {
					return calls(creat(g, F{"cmd": 101, "uuid[0]": tmemU.Lo, "uuid[1]": tmemU.Hi, "flags": 1, "arg1": 3}))
				}
				return calls(cd{cmd: 11, cli: 3, len: 32, ptr: true, bufL: &recPool1,
					bufF: F{"[0].flags": 0x4, "[0].uuid[0]": tmemU.Lo, "[0].uuid[1]": tmemU.Hi}}.want(g))
			},
			res: res(true),
		},
		{
			name:  "shared auth revoke",
			run:   func(cl *Client) (any, error) { return cl.SharedAuth(3, tmemU, false) },
			reply: rc(0),
			want: func(g Generation) tmemExpect {
				if g <= GenC {
					return calls(creat(g, F{"cmd": 101, "uuid[0]": tmemU.Lo, "uuid[1]": tmemU.Hi, "flags": 0, "arg1": 3}))
				}
				return calls(cd{cmd: 11, cli: 3, len: 32, ptr: true, bufL: &recPool1,
					bufF: F{"[0].uuid[0]": tmemU.Lo, "[0].uuid[1]": tmemU.Hi}}.want(g))
			},
			res: res(false),
		},
		{
			name:  "shared auth all clients",
			run:   func(cl *Client) (any, error) { return cl.SharedAuth(AllClients, tmemU, true) },
			reply: rc(1),
			want: func(g Generation) tmemExpect {
				if g <= GenC {
					return calls(creat(g, F{"cmd": 101, "uuid[0]": tmemU.Lo, "uuid[1]": tmemU.Hi, "flags": 1, "arg1": 0xFFFF}))
				}
				return unsupported("4.0–4.8")
			},
			res: res(true),
		},
		{
			name:  "shared auth no client",
			run:   func(cl *Client) (any, error) { return cl.SharedAuth(3, tmemU, true) },
			reply: fail(hypercall.EINVAL),
			want: func(g Generation) tmemExpect {
				if g <= GenC {
					return calls(creat(g, F{"cmd": 101, "uuid[0]": tmemU.Lo, "uuid[1]": tmemU.Hi, "flags": 1, "arg1": 3}))
				}
				return calls(cd{cmd: 11, cli: 3, len: 32, ptr: true, bufL: &recPool1,
					bufF: F{"[0].flags": 0x4, "[0].uuid[0]": tmemU.Lo, "[0].uuid[1]": tmemU.Hi}}.want(g))
			},
			err: func(g Generation) error {
				if g <= GenC {
					return ErrNoClient
				}
				return ErrInvalid
			},
		},
	}
}
