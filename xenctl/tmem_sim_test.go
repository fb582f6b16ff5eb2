package xenctl

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/hypercall/hypercalltest"
)

// tmemSim is a small stateful tmem for save/restore tests: clients with
// pools and pages, answering the control sub-ops SaveDomain and
// RestoreDomain use the way each generation's Xen does (xen-tmem-abi.md
// §4.2, §4.3, §6.4). It decodes arguments with package hypercall's structs.
type tmemSim struct {
	t       testing.TB
	gen     Generation
	clients map[uint16]*simClient
}

type simClient struct {
	weight, cap               uint32
	compress, frozen, wasFroz bool
	pools                     [16]*simPool
}

type simPool struct {
	flags  uint32
	uuid   UUID
	pages  []simPage
	cursor int
}

type simPage struct {
	oid   [3]uint64
	index uint32
	data  []byte
}

func (s *tmemSim) client(t testing.TB) *Client {
	cl, err := New(hypercalltest.New(s.handle), nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// simReq is a decoded control request: generation A/B names arg1/arg2,
// generation C/D len/arg.
type simReq struct {
	sub        uint32
	pool       int32
	cli        uint16
	arg1, arg2 uint32
	oid        [3]uint64
	buf        uint64
}

func (s *tmemSim) handle(op hypercall.Op, args hypercall.Args, mem *hypercalltest.Memory) (uint64, error) {
	switch op {
	case hypercall.OpXenVersion:
		v := tmemVersion(s.gen)
		if args[0] == hypercall.XENVER_version {
			return uint64(v.Major)<<16 | uint64(v.Minor), nil
		}
		b, err := mem.Bytes(args[1], hypercall.XenExtraversionLen)
		if err != nil {
			return 0, err
		}
		copy(b, v.Extra+"\x00")
		return 0, nil
	case hypercall.OpSysctl:
		sc, err := hypercalltest.View[hypercall.Sysctl](mem, args[0])
		if err != nil {
			return 0, err
		}
		if sc.Cmd != hypercall.XEN_SYSCTL_tmem_op || s.gen < GenB {
			return 0, hypercall.ENOSYS
		}
		t, _ := hypercall.ViewBytes[hypercall.SysctlTmemOp](sc.U[:], 0)
		return s.ctrl(simReq{t.Cmd, t.PoolID, uint16(t.CliID), t.Len, t.Arg, t.OID, t.Buf}, mem)
	}
	var cmd uint32
	if s.gen == GenA0 {
		a, err := hypercalltest.View[hypercall.TmemOpA0](mem, args[0])
		if err != nil {
			return 0, err
		}
		cmd = a.Cmd
		if cmd == hypercall.TMEM_CONTROL {
			c, _ := hypercalltest.View[hypercall.TmemOpA0Ctrl](mem, args[0])
			return s.ctrl(simReq{c.Subop, c.PoolID, uint16(c.CliID), c.Arg1, c.Arg2, [3]uint64{c.Arg3}, c.Buf}, mem)
		}
		n, _ := hypercalltest.View[hypercall.TmemOpA0New](mem, args[0])
		return s.creat(n.Cmd, n.PoolID, n.Flags, n.Arg1, UUID{n.UUID[0], n.UUID[1]})
	}
	a, err := hypercalltest.View[hypercall.TmemOp](mem, args[0])
	if err != nil {
		return 0, err
	}
	cmd = a.Cmd
	if cmd == hypercall.TMEM_CONTROL && s.gen == GenA1 {
		c, _ := hypercalltest.View[hypercall.TmemOpCtrl](mem, args[0])
		return s.ctrl(simReq{c.Subop, c.PoolID, uint16(c.CliID), c.Arg1, c.Arg2, c.OID, c.Buf}, mem)
	}
	n, _ := hypercalltest.View[hypercall.TmemOpCreat](mem, args[0])
	return s.creat(n.Cmd, n.PoolID, n.Flags, n.Arg1, UUID{n.UUID[0], n.UUID[1]})
}

// creat answers TMEM_RESTORE_NEW (4.0–4.8); nothing else is needed here.
func (s *tmemSim) creat(cmd uint32, pool int32, flags, cli uint32, u UUID) (uint64, error) {
	if cmd != hypercall.TMEM_RESTORE_NEW || s.gen == GenD {
		return 0, hypercall.EOPNOTSUPP
	}
	c := s.clients[uint16(cli)]
	if c == nil {
		return 0, hypercall.EPERM
	}
	return s.newPool(c, pool, flags, u)
}

func (s *tmemSim) newPool(c *simClient, pool int32, flags uint32, u UUID) (uint64, error) {
	version := uint32(1)
	if s.gen == GenA0 {
		version = 0
	}
	if pool < 0 || pool >= 16 || c.pools[pool] != nil || flags>>24 != version || flags&0x00FFFFFC != 0 {
		return 0, hypercall.EPERM
	}
	c.pools[pool] = &simPool{flags: flags, uuid: u}
	if flags&hypercall.TMEM_POOL_SHARED == 0 {
		c.pools[pool].uuid = UUID{}
	}
	return uint64(pool), nil
}

func (s *tmemSim) ctrl(r simReq, mem *hypercalltest.Memory) (uint64, error) {
	c := s.clients[r.cli]
	var p *simPool
	if c != nil && r.pool >= 0 && r.pool < 16 {
		p = c.pools[r.pool]
	}
	buf := func(n int) []byte {
		b, err := mem.Bytes(r.buf, n)
		if err != nil {
			s.t.Errorf("sub-op %d: buffer: %v", r.sub, err)
		}
		return b
	}
	ab := s.gen <= GenB
	hs := tmemHandleSize
	if s.gen == GenA0 {
		hs = tmemHandleA0Size
	}
	switch {
	case r.sub == hypercall.TMEMC_SAVE_BEGIN:
		if c == nil || c.npools() == 0 {
			if ab {
				return 0, nil
			}
			return 0, hypercall.ENOENT
		}
		c.wasFroz, c.frozen = c.frozen, true
		for _, p := range c.pools {
			if p != nil {
				p.cursor = 0
			}
		}
		if ab {
			return 1, nil
		}
		return 0, nil
	case r.sub == hypercall.TMEMC_LIST:
		if c == nil {
			return 0, hypercall.EPERM
		}
		copy(buf(int(r.arg1)), c.list(r.cli, ab)+"\x00")
		return 0, nil
	case ab && r.sub == hypercall.TMEMC_SET_WEIGHT && c != nil:
		c.weight = r.arg1
		return 0, nil
	case ab && r.sub == hypercall.TMEMC_SET_CAP && c != nil:
		c.cap = r.arg1
		return 0, nil
	case ab && r.sub == hypercall.TMEMC_SET_COMPRESS && c != nil:
		c.compress = r.arg1 != 0
		return 0, nil
	case ab && r.sub == hypercall.TMEMC_SAVE_GET_POOL_FLAGS && p != nil:
		return uint64(p.flags), nil
	case ab && r.sub == hypercall.TMEMC_SAVE_GET_POOL_NPAGES && p != nil:
		return uint64(len(p.pages)), nil
	case ab && r.sub == hypercall.TMEMC_SAVE_GET_POOL_UUID && p != nil:
		b := buf(16)
		binary.LittleEndian.PutUint64(b, p.uuid.Lo)
		binary.LittleEndian.PutUint64(b[8:], p.uuid.Hi)
		return 0, nil
	case !ab && r.sub == hypercall.XEN_SYSCTL_TMEM_OP_GET_CLIENT_INFO:
		rec := tmemClientBytes(1, 16, 0, 0, 0)
		if c != nil {
			flags := b2u(c.frozen) | b2u(c.compress)<<1
			rec = tmemClientBytes(1, 16, uint32(c.npools()), flags, c.weight)
		}
		copy(buf(20), rec)
		return 0, nil
	case !ab && r.sub == hypercall.XEN_SYSCTL_TMEM_OP_SET_CLIENT_INFO:
		if c == nil {
			return 0, hypercall.ENOENT
		}
		rec, _ := hypercall.ViewBytes[hypercall.TmemClient](buf(20), 0)
		if rec.Version != 1 {
			return 0, hypercall.EOPNOTSUPP
		}
		c.weight, c.compress = rec.Weight, rec.Flags&2 != 0
		return 0, nil
	case !ab && r.sub == hypercall.XEN_SYSCTL_TMEM_OP_GET_POOLS:
		if c == nil || r.arg1%32 != 0 {
			return 0, hypercall.EINVAL
		}
		b, n := buf(int(r.arg1)), 0
		for id, p := range c.pools {
			if p != nil && (n+1)*32 <= len(b) {
				copy(b[n*32:], tmemPoolBytes(p.flags, uint32(id), uint64(len(p.pages)), p.uuid))
				n++
			}
		}
		return uint64(n), nil
	case s.gen == GenD && r.sub == hypercall.XEN_SYSCTL_TMEM_OP_SET_POOLS:
		if c == nil {
			c = &simClient{}
			s.clients[r.cli] = c
		}
		b, last := buf(int(r.arg1)), uint64(0)
		for i := 0; i+32 <= len(b); i += 32 {
			rec, _ := hypercall.ViewBytes[hypercall.TmemPoolInfo](b, i)
			id, err := s.newPool(c, int32(rec.ID), rec.Flags, UUID{rec.UUID[0], rec.UUID[1]})
			if err != nil {
				return 0, err
			}
			rec.ID, last = uint32(id), id
		}
		return last, nil
	case r.sub == hypercall.TMEMC_SAVE_GET_NEXT_PAGE:
		if p == nil || p.flags&1 == 0 || p.cursor >= len(p.pages) {
			return 0, hypercall.EPERM
		}
		if int(r.arg1) < hs+PageSize {
			return 0, hypercall.ENOMEM
		}
		pg := p.pages[p.cursor]
		p.cursor++
		b := buf(hs + PageSize)
		copy(b, tmemHandleBytes(s.gen, uint32(r.pool), pg.index, pg.oid))
		copy(b[hs:], pg.data)
		return 1, nil
	case r.sub == hypercall.TMEMC_SAVE_END && c != nil:
		c.frozen = c.wasFroz
		return 0, nil
	case r.sub == hypercall.TMEMC_RESTORE_BEGIN:
		if c != nil {
			if ab {
				return 0, hypercall.EPERM
			}
			return 0, hypercall.EEXIST
		}
		s.clients[r.cli] = &simClient{}
		if ab {
			return 1, nil
		}
		return 0, nil
	case r.sub == hypercall.TMEMC_RESTORE_PUT_PAGE:
		if p == nil {
			return 0, hypercall.ENODEV
		}
		data := append([]byte(nil), buf(int(r.arg1))...)
		p.pages = append(p.pages, simPage{oid: r.oid, index: r.arg2, data: data})
		return 1, nil
	}
	return 0, hypercall.EPERM
}

func (c *simClient) npools() int {
	n := 0
	for _, p := range c.pools {
		if p != nil {
			n++
		}
	}
	return n
}

// list is the single-client short LIST text (§7.3); "ca" only up to 4.7.
func (c *simClient) list(cli uint16, withCap bool) string {
	capItem := ""
	if withCap {
		capItem = fmt.Sprintf("ca:%d,", c.cap)
	}
	s := fmt.Sprintf("C=CI:%d,ww:%d,%sco:%d,fr:%d,Tc:0,Ge:0,Pp:0,Gp:0\n", cli, int32(c.weight), capItem, b2u(c.compress), b2u(c.frozen))
	for id, p := range c.pools {
		if p == nil {
			continue
		}
		pt := [2]byte{'E', 'P'}
		if p.flags&1 != 0 {
			pt[0] = 'P'
		}
		if p.flags&2 != 0 {
			pt[1] = 'S'
		}
		s += fmt.Sprintf("P=CI:%d,PI:%d,PT:%s,U0:%x,U1:%x\n", cli, id, pt[:], p.uuid.Lo, p.uuid.Hi)
	}
	return s
}
