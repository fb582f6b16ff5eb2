package xenctl

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/hypercall/hypercalltest"
)

// The -update flag rewrites testdata/tmem/*.hex. It is registered in init,
// guarded, because another test file of this package defines it too.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files in testdata")
	}
}

func tmemUpdate() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// tmemGens is every generation, GenNone (4.13+) last.
var tmemGens = []Generation{GenA0, GenA1, GenB, GenC, GenD, GenNone}

// tmemVersion is the Xen release each generation is tested as.
func tmemVersion(g Generation) Version {
	switch g {
	case GenA0:
		return Version{4, 0, ".1"}
	case GenA1:
		return Version{4, 5, ".5"}
	case GenB:
		return Version{4, 7, ".6"}
	case GenC:
		return Version{4, 8, ".5"}
	case GenD:
		return Version{4, 12, ".4"}
	}
	return Version{4, 17, ".7"}
}

// tmemIface is XEN_SYSCTL_INTERFACE_VERSION of tmemVersion(g) (§1.3).
func tmemIface(g Generation) uint64 {
	return map[Generation]uint64{GenA0: 0x07, GenA1: 0x0B, GenB: 0x0D, GenC: 0x0E, GenD: 0x12, GenNone: 0x15}[g]
}

// tmemCall is one tmem hypercall as the fake saw it.
type tmemCall struct {
	op  hypercall.Op
	arg []byte // copy of the argument image, buffer pointer zeroed
	// ptr is the buffer pointer found in arg (0 if none), buf the memory it
	// points to (length from the arg1/len field), sent a copy of it at the
	// time of the call.
	ptr  uint64
	buf  []byte
	sent []byte
	rc   uint64
	err  error
}

// u32/u64 read the argument image.
func (c *tmemCall) u32(off int) uint32 { return binary.LittleEndian.Uint32(c.arg[off:]) }
func (c *tmemCall) u64(off int) uint64 { return binary.LittleEndian.Uint64(c.arg[off:]) }

// tmemFake answers xen_version and records every tmem_op and sysctl; reply
// answers the n-th recorded call and may write into c.buf.
type tmemFake struct {
	t     testing.TB
	gen   Generation
	calls []*tmemCall
	reply func(n int, c *tmemCall) (uint64, error)
}

func newTmemFake(t testing.TB, g Generation, reply func(n int, c *tmemCall) (uint64, error)) (*tmemFake, *Client, *hypercalltest.Caller) {
	t.Helper()
	f := &tmemFake{t: t, gen: g, reply: reply}
	c := hypercalltest.New(f.handle)
	cl, err := New(c, nil)
	if err != nil {
		t.Fatalf("New on Xen %s: %v", tmemVersion(g), err)
	}
	t.Cleanup(func() { cl.Close() })
	return f, cl, c
}

func (f *tmemFake) handle(op hypercall.Op, args hypercall.Args, mem *hypercalltest.Memory) (uint64, error) {
	if op == hypercall.OpXenVersion {
		v := tmemVersion(f.gen)
		switch args[0] {
		case hypercall.XENVER_version:
			return uint64(v.Major)<<16 | uint64(v.Minor), nil
		case hypercall.XENVER_extraversion:
			b, err := mem.Bytes(args[1], hypercall.XenExtraversionLen)
			if err != nil {
				return 0, err
			}
			copy(b, v.Extra+"\x00")
			return 0, nil
		}
		return 0, hypercall.ENOSYS
	}
	if args[1] != 0 || args[2] != 0 || args[3] != 0 || args[4] != 0 {
		f.t.Errorf("hypercall %d: args[1..4] = %#x, want 0", op, args[1:])
	}
	size, ptrOff, lenOff := 0, -1, -1
	switch {
	case op == hypercall.OpSysctl:
		size, ptrOff, lenOff = sysctlSize, 56, 20
	case op == hypercall.OpTmem && f.gen == GenA0:
		size = tmemOpA0Size
	case op == hypercall.OpTmem:
		size = tmemOpSize
	default:
		f.t.Errorf("unexpected hypercall %d", op)
		return 0, hypercall.ENOSYS
	}
	arg, err := mem.Bytes(args[0], size)
	if err != nil {
		f.t.Errorf("hypercall %d: argument %#x not in hypercall memory: %v", op, args[0], err)
		return 0, err
	}
	if op == hypercall.OpSysctl && binary.LittleEndian.Uint32(arg) == hypercall.XEN_SYSCTL_getdomaininfolist {
		return 0, hypercall.ENOSYS // List falls back to 64 clients
	}
	if op == hypercall.OpTmem && binary.LittleEndian.Uint32(arg) == hypercall.TMEM_CONTROL {
		ptrOff, lenOff = 48, 16
		if f.gen == GenA0 {
			ptrOff = 32
		}
	}
	c := &tmemCall{op: op, arg: append([]byte(nil), arg...)}
	if ptrOff >= 0 {
		c.ptr = binary.LittleEndian.Uint64(arg[ptrOff:])
		clear(c.arg[ptrOff : ptrOff+8])
		if c.ptr != 0 {
			n := int(binary.LittleEndian.Uint32(arg[lenOff:]))
			if c.buf, err = mem.Bytes(c.ptr, n); err != nil {
				f.t.Errorf("hypercall %d: buffer %#x of %d bytes not in hypercall memory: %v", op, c.ptr, n, err)
				return 0, err
			}
			c.sent = append([]byte(nil), c.buf...)
		}
	}
	f.calls = append(f.calls, c)
	if f.reply == nil {
		return 0, nil
	}
	c.rc, c.err = f.reply(len(f.calls)-1, c)
	return c.rc, c.err
}

// tmemField is one field of an argument layout; ptr marks the buffer
// pointer, which the fake zeroes.
type tmemField struct {
	name      string
	off, size int
	ptr       bool
}

// tmemLayout is a byte layout written down from xen-tmem-abi.md, not from
// the structs in package hypercall, so that the two check each other.
type tmemLayout struct {
	name   string
	size   int
	fields []tmemField
	// names maps a field's values to their Xen names, for the golden files.
	names map[string]map[uint64]string
}

// Names of tmem_op commands (§3.1), generation A/B sub-ops (§4.2) and
// generation C/D sub-ops (§6.4).
var (
	tmemCmdNames = map[uint64]string{0: "TMEM_CONTROL", 1: "NEW_POOL", 2: "DESTROY_POOL", 4: "PUT_PAGE",
		5: "GET_PAGE", 6: "FLUSH_PAGE", 7: "FLUSH_OBJECT", 101: "TMEM_AUTH", 102: "TMEM_RESTORE_NEW"}
	tmemSubopsAB = map[uint64]string{0: "THAW", 1: "FREEZE", 2: "FLUSH", 3: "DESTROY", 4: "LIST", 5: "SET_WEIGHT",
		6: "SET_CAP", 7: "SET_COMPRESS", 8: "QUERY_FREEABLE_MB", 10: "SAVE_BEGIN", 16: "SAVE_GET_POOL_FLAGS",
		17: "SAVE_GET_POOL_NPAGES", 18: "SAVE_GET_POOL_UUID", 19: "SAVE_GET_NEXT_PAGE", 20: "SAVE_GET_NEXT_INV",
		21: "SAVE_END", 30: "RESTORE_BEGIN", 32: "RESTORE_PUT_PAGE", 33: "RESTORE_FLUSH_PAGE"}
	tmemSubopsCD = map[uint64]string{0: "THAW", 1: "FREEZE", 2: "FLUSH", 3: "DESTROY", 4: "LIST",
		5: "GET_CLIENT_INFO", 6: "SET_CLIENT_INFO", 7: "GET_POOLS", 8: "QUERY_FREEABLE_MB", 9: "SET_POOLS",
		10: "SAVE_BEGIN", 11: "SET_AUTH", 19: "SAVE_GET_NEXT_PAGE", 20: "SAVE_GET_NEXT_INV", 21: "SAVE_END",
		30: "RESTORE_BEGIN", 32: "RESTORE_PUT_PAGE", 33: "RESTORE_FLUSH_PAGE"}
	tmemOpNames = map[string]map[uint64]string{"cmd": tmemCmdNames, "subop": tmemSubopsAB}
)

var (
	// §3.2, generation A0, 40 bytes.
	tmemA0Ctrl = tmemLayout{"struct tmem_op (A0, 40 bytes) u.ctrl", 40, []tmemField{
		{"cmd", 0, 4, false}, {"pool_id", 4, 4, false}, {"subop", 8, 4, false}, {"cli_id", 12, 4, false},
		{"arg1", 16, 4, false}, {"arg2", 20, 4, false}, {"arg3", 24, 8, false}, {"buf", 32, 8, true}}, tmemOpNames}
	tmemA0New = tmemLayout{"struct tmem_op (A0, 40 bytes) u.new", 40, []tmemField{
		{"cmd", 0, 4, false}, {"pool_id", 4, 4, false}, {"uuid[0]", 8, 8, false}, {"uuid[1]", 16, 8, false},
		{"flags", 24, 4, false}, {"arg1", 28, 4, false}, {"(rest of union)", 32, 8, false}}, tmemOpNames}
	tmemA0Gen = tmemLayout{"struct tmem_op (A0, 40 bytes) u.gen", 40, []tmemField{
		{"cmd", 0, 4, false}, {"pool_id", 4, 4, false}, {"object", 8, 8, false}, {"index", 16, 4, false},
		{"tmem_offset", 20, 4, false}, {"pfn_offset", 24, 4, false}, {"len", 28, 4, false}, {"cmfn", 32, 8, false}}, tmemOpNames}
	// §3.3, generations A1–D, 56 bytes.
	tmemA1Ctrl = tmemLayout{"struct tmem_op (56 bytes) u.ctrl", 56, []tmemField{
		{"cmd", 0, 4, false}, {"pool_id", 4, 4, false}, {"subop", 8, 4, false}, {"cli_id", 12, 4, false},
		{"arg1", 16, 4, false}, {"arg2", 20, 4, false}, {"oid[0]", 24, 8, false}, {"oid[1]", 32, 8, false},
		{"oid[2]", 40, 8, false}, {"buf", 48, 8, true}}, tmemOpNames}
	tmemA1Creat = tmemLayout{"struct tmem_op (56 bytes) u.creat", 56, []tmemField{
		{"cmd", 0, 4, false}, {"pool_id", 4, 4, false}, {"uuid[0]", 8, 8, false}, {"uuid[1]", 16, 8, false},
		{"flags", 24, 4, false}, {"arg1", 28, 4, false}, {"(rest of union)", 32, 24, false}}, tmemOpNames}
	tmemA1Gen = tmemLayout{"struct tmem_op (56 bytes) u.gen", 56, []tmemField{
		{"cmd", 0, 4, false}, {"pool_id", 4, 4, false}, {"oid[0]", 8, 8, false}, {"oid[1]", 16, 8, false},
		{"oid[2]", 24, 8, false}, {"index", 32, 4, false}, {"tmem_offset", 36, 4, false},
		{"pfn_offset", 40, 4, false}, {"len", 44, 4, false}, {"cmfn", 48, 8, false}}, tmemOpNames}
	// §6.5, struct xen_sysctl with xen_sysctl_tmem_op at 8, 136 bytes.
	tmemSysctlB  = tmemSysctl("B", "tmem.arg1", "tmem.arg2", tmemSubopsAB)
	tmemSysctlCD = tmemSysctl("C/D", "tmem.len", "tmem.arg", tmemSubopsCD)
	// §6.2 and §6.3.
	tmemClientRec = tmemLayout{"struct xen_tmem_client (20 bytes)", 20, []tmemField{
		{"version", 0, 4, false}, {"maxpools", 4, 4, false}, {"nr_pools", 8, 4, false},
		{"flags", 12, 4, false}, {"weight", 16, 4, false}}, nil}
)

func tmemSysctl(gen, arg1, arg2 string, subops map[uint64]string) tmemLayout {
	return tmemLayout{"struct xen_sysctl (136 bytes), tmem op of generation " + gen, 136, []tmemField{
		{"cmd", 0, 4, false}, {"interface_version", 4, 4, false}, {"tmem.cmd", 8, 4, false},
		{"tmem.pool_id", 12, 4, false}, {"tmem.cli_id", 16, 4, false}, {arg1, 20, 4, false},
		{arg2, 24, 4, false}, {"tmem.pad", 28, 4, false}, {"tmem.oid[0]", 32, 8, false},
		{"tmem.oid[1]", 40, 8, false}, {"tmem.oid[2]", 48, 8, false}, {"tmem.buf", 56, 8, true},
		{"(rest of union)", 64, 72, false}},
		map[string]map[uint64]string{"cmd": {24: "XEN_SYSCTL_tmem_op"}, "tmem.cmd": subops}}
}

// tmemPoolRecs is n struct xen_tmem_pool_info records (§6.3).
func tmemPoolRecs(n int) tmemLayout {
	l := tmemLayout{fmt.Sprintf("%d × struct xen_tmem_pool_info (32 bytes)", n), 32 * n, nil, nil}
	for i := 0; i < n; i++ {
		p := fmt.Sprintf("[%d].", i)
		l.fields = append(l.fields, tmemField{p + "flags", 32 * i, 4, false}, tmemField{p + "id", 32*i + 4, 4, false},
			tmemField{p + "n_pages", 32*i + 8, 8, false}, tmemField{p + "uuid[0]", 32*i + 16, 8, false},
			tmemField{p + "uuid[1]", 32*i + 24, 8, false})
	}
	return l
}

// build returns the image with fields set and every other byte 0.
func (l tmemLayout) build(t testing.TB, fields map[string]uint64) []byte {
	t.Helper()
	b := make([]byte, l.size)
	for name, v := range fields {
		f, ok := l.field(name)
		if !ok {
			t.Fatalf("layout %s has no field %q", l.name, name)
		}
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], v)
		if f.size < 8 && v>>(8*f.size) != 0 {
			t.Fatalf("layout %s: %s = %#x does not fit %d bytes", l.name, name, v, f.size)
		}
		copy(b[f.off:f.off+f.size], w[:])
	}
	return b
}

func (l tmemLayout) field(name string) (tmemField, bool) {
	for _, f := range l.fields {
		if f.name == name {
			return f, true
		}
	}
	return tmemField{}, false
}

// render dumps b one field per line: offset, bytes, name and value.
func (l tmemLayout) render(b []byte) string {
	var sb strings.Builder
	for _, f := range l.fields {
		v := b[f.off : f.off+f.size]
		var hex, val string
		if f.size > 8 {
			hex, val = fmt.Sprintf("%02x*%d", v[0], f.size), "0"
			for _, x := range v {
				if x != v[0] {
					hex, val = fmt.Sprintf("% x", v), "(not zero)"
					break
				}
			}
		} else {
			var w [8]byte
			copy(w[:], v)
			n := binary.LittleEndian.Uint64(w[:])
			hex = fmt.Sprintf("% x", v)
			val = fmt.Sprintf("%d", n)
			if n > 9 {
				val = fmt.Sprintf("%d (%#x)", n, n)
			}
			if f.size == 4 && int32(n) < 0 {
				val = fmt.Sprintf("%d (%#x)", int32(n), n)
			}
		}
		if f.ptr {
			val = "(pointer, shown as 0)"
		}
		if name, ok := l.names[f.name][binary.LittleEndian.Uint64(append(v[:f.size:f.size], make([]byte, 8)...))]; ok {
			val += " " + name
		}
		fmt.Fprintf(&sb, "%04x  %-23s  %s = %s\n", f.off, hex, f.name, val)
	}
	return sb.String()
}

// TestTmemLayouts checks that every layout table covers its size exactly,
// field after field.
func TestTmemLayouts(t *testing.T) {
	for _, l := range []tmemLayout{tmemA0Ctrl, tmemA0New, tmemA0Gen, tmemA1Ctrl, tmemA1Creat, tmemA1Gen,
		tmemSysctlB, tmemSysctlCD, tmemClientRec, tmemPoolRecs(2)} {
		off := 0
		for _, f := range l.fields {
			if f.off != off {
				t.Errorf("%s: field %s at %d, want %d", l.name, f.name, f.off, off)
			}
			off = f.off + f.size
		}
		if off != l.size {
			t.Errorf("%s: fields end at %d, size %d", l.name, off, l.size)
		}
	}
}

func tmemGoldenPath(g Generation) string {
	return filepath.Join("testdata", "tmem", strings.ToLower(g.String())+".hex")
}

// readTmemGolden parses a golden file into its "== name" sections.
func readTmemGolden(t testing.TB, g Generation) map[string]string {
	t.Helper()
	b, err := os.ReadFile(tmemGoldenPath(g))
	if err != nil {
		t.Fatalf("golden file (regenerate with -update): %v", err)
	}
	out := map[string]string{}
	name := ""
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if s, ok := strings.CutPrefix(line, "== "); ok {
			name = strings.TrimSuffix(s, "\n")
			continue
		}
		if name != "" {
			out[name] += line
		}
	}
	return out
}

func tmemGoldenHeader(g Generation) string {
	v := tmemVersion(g)
	return fmt.Sprintf(`# Generation %s (Xen %s), tested as Xen %s: the hypercall argument images
# xenctl sends for each tmem operation, one "== name" section per test case
# of TestTmemOps. Each call shows the hypercall number, what the fake
# hypervisor answered, and the argument one field per line: offset (hex),
# bytes as sent (little-endian), field name = value. "00*N" is N zero bytes.
# Buffer pointers are shown as 0 (the test checks them separately); the
# records they point to follow as "buf" when the call sends one.
# Regenerate with: go test ./xenctl -run TestTmemOps -update
`, g, g.Releases(), v)
}

func tmemErrnoText(err error) string {
	if e, ok := err.(hypercall.Errno); ok {
		return "-" + e.Name()
	}
	return err.Error()
}
