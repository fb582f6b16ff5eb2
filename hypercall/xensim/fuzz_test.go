package xensim

import (
	"encoding/binary"
	"testing"

	"github.com/xentmem/xentmem/hypercall"
)

// fuzzStep is one hypercall of a fuzz program: a selector byte and the
// 136 argument bytes.
const fuzzStep = 1 + 136

// FuzzHypercall runs arbitrary programs of hypercalls (tmem_op, sysctl,
// xen_version; from dom0 or a guest) against a few releases: the
// simulator must answer every call, never panic, and still list and
// destroy the guest afterwards. Argument words whose low bit is set are
// turned into pointers into the argument buffer, so that LIST, client and
// pool records and save/restore buffers are exercised.
func FuzzHypercall(f *testing.F) {
	var prog []byte
	step := func(sel byte, fill func(b []byte)) {
		b := make([]byte, fuzzStep)
		b[0] = sel
		fill(b[1:])
		prog = append(prog, b...)
	}
	le := binary.LittleEndian
	op := func(cmd uint32, pool int32) func([]byte) {
		return func(b []byte) { le.PutUint32(b[0:], cmd); le.PutUint32(b[4:], uint32(pool)); le.PutUint32(b[24:], eph) }
	}
	step(0x10, op(hypercall.TMEM_NEW_POOL, 0))
	step(0x10, op(hypercall.TMEM_NEW_POOL, 0))
	step(0x18, op(hypercall.TMEM_PUT_PAGE, 0))
	step(0x18, op(hypercall.TMEM_GET_PAGE, 0))
	step(0x01, func(b []byte) {
		le.PutUint32(b[0:], hypercall.XEN_SYSCTL_tmem_op)
		le.PutUint32(b[4:], 0x12)
		le.PutUint32(b[8:], hypercall.TMEMC_LIST)
		le.PutUint32(b[16:], allClients)
		le.PutUint32(b[20:], 4096)
		le.PutUint64(b[56:], 1)
	})
	step(0x01, func(b []byte) {
		le.PutUint32(b[0:], hypercall.XEN_SYSCTL_tmem_op)
		le.PutUint32(b[4:], 0x12)
		le.PutUint32(b[8:], hypercall.TMEMC_SAVE_BEGIN)
		le.PutUint32(b[16:], 1)
	})
	f.Add(byte(0), prog)
	f.Add(byte(1), prog[:2*fuzzStep])
	f.Add(byte(2), []byte{0x02, 1, 0, 0, 0})
	versions := []string{"4.12.4", "4.0.0", "4.5.5", "4.8.5", "4.17.7"}
	ops := []hypercall.Op{hypercall.OpTmem, hypercall.OpSysctl, hypercall.OpXenVersion}
	f.Fuzz(func(t *testing.T, ver byte, prog []byte) {
		v := versions[int(ver)%len(versions)]
		s, err := New(&Config{Version: v, Dom0MaxMemoryKiB: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		id, _ := s.CreateDomain(DomainConfig{MemoryKiB: 4 << 10})
		callers := []hypercall.Caller{s, s.Guest(id)}
		var bufs []*hypercall.Buffer
		for _, c := range callers {
			b, err := c.Alloc(3 * 4096)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			bufs = append(bufs, b)
		}
		for len(prog) > 0 && len(bufs) > 0 {
			n := min(len(prog), fuzzStep)
			sel, args := prog[0], prog[1:n]
			prog = prog[n:]
			who := int(sel>>3) & 1
			c, buf := callers[who], bufs[who]
			mem := buf.Bytes()
			clear(mem[:256])
			copy(mem, args)
			for off := 8; off+8 <= 136; off += 8 {
				if w := le.Uint64(mem[off:]); w&1 == 1 && w < 1<<16 {
					le.PutUint64(mem[off:], buf.AddrAt(4096+int(w>>1)%8192))
				}
			}
			o := ops[int(sel)%len(ops)]
			a := hypercall.Args{buf.Addr(), buf.AddrAt(4096)}
			if o == hypercall.OpXenVersion {
				a[0] = uint64(sel>>4) % 12
			}
			c.Hypercall(o, a)
		}
		r := newRaw(t, s, v)
		if _, res := r.list(allClients, true, 1<<16); res != 0 && s.rel.tmemABI() {
			t.Fatalf("LIST after the program: %d", res)
		}
		if err := s.DestroyDomain(id); err != nil {
			t.Fatal(err)
		}
		if _, res := r.list(uint32(id), false, 4096); res == 0 {
			t.Fatal("the destroyed guest is still a tmem client")
		}
	})
}
