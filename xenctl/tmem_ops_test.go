package xenctl

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/xentmem/xentmem/hypercall"
)

// F names field values of a tmemLayout; unnamed bytes must be 0.
type F = map[string]uint64

// tmemWant is one expected hypercall.
type tmemWant struct {
	op     hypercall.Op
	layout tmemLayout
	fields F
	ptr    bool        // a buffer pointer is set
	bufL   *tmemLayout // record expected in the buffer, if any
	bufF   F
}

// tmemExpect is what one operation should send on one generation: calls,
// or, if have is set, an *UnsupportedError with that Have and no call.
type tmemExpect struct {
	calls []tmemWant
	have  string
}

func calls(w ...tmemWant) tmemExpect { return tmemExpect{calls: w} }
func unsupported(have string) tmemExpect {
	return tmemExpect{have: have}
}

// ab is a generation A or B control call (§6.6 columns "Gen A", "Gen B").
type ab struct {
	sub, pool, cli, arg1, arg2 uint64
	oid                        [3]uint64
	ptr                        bool
}

func (a ab) want(g Generation) tmemWant {
	switch g {
	case GenA0:
		if a.oid[1] != 0 || a.oid[2] != 0 {
			panic("A0 object ids are 64-bit")
		}
		return tmemWant{op: hypercall.OpTmem, layout: tmemA0Ctrl, ptr: a.ptr, fields: F{"subop": a.sub, "pool_id": a.pool,
			"cli_id": a.cli, "arg1": a.arg1, "arg2": a.arg2, "arg3": a.oid[0]}}
	case GenA1:
		return tmemWant{op: hypercall.OpTmem, layout: tmemA1Ctrl, ptr: a.ptr, fields: F{"subop": a.sub, "pool_id": a.pool,
			"cli_id": a.cli, "arg1": a.arg1, "arg2": a.arg2, "oid[0]": a.oid[0], "oid[1]": a.oid[1], "oid[2]": a.oid[2]}}
	}
	return tmemWant{op: hypercall.OpSysctl, layout: tmemSysctlB, ptr: a.ptr, fields: F{"cmd": 24, "interface_version": tmemIface(g),
		"tmem.cmd": a.sub, "tmem.pool_id": a.pool, "tmem.cli_id": a.cli, "tmem.arg1": a.arg1, "tmem.arg2": a.arg2,
		"tmem.oid[0]": a.oid[0], "tmem.oid[1]": a.oid[1], "tmem.oid[2]": a.oid[2]}}
}

// cd is a generation C or D sysctl call (§6.6 column "Gen C/D").
type cd struct {
	cmd, pool, cli, len, arg uint64
	oid                      [3]uint64
	ptr                      bool
	bufL                     *tmemLayout
	bufF                     F
}

func (c cd) want(g Generation) tmemWant {
	return tmemWant{op: hypercall.OpSysctl, layout: tmemSysctlCD, ptr: c.ptr, bufL: c.bufL, bufF: c.bufF, fields: F{
		"cmd": 24, "interface_version": tmemIface(g), "tmem.cmd": c.cmd, "tmem.pool_id": c.pool, "tmem.cli_id": c.cli,
		"tmem.len": c.len, "tmem.arg": c.arg, "tmem.oid[0]": c.oid[0], "tmem.oid[1]": c.oid[1], "tmem.oid[2]": c.oid[2]}}
}

// ctl is the control call of an operation on g, from its A/B and C/D forms.
func ctl(g Generation, a ab, c cd) tmemExpect {
	if g <= GenB {
		return calls(a.want(g))
	}
	return calls(c.want(g))
}

// creat is a tmem_op read as u.creat (u.new on A0), hypercall 38.
func creat(g Generation, f F) tmemWant {
	if g == GenA0 {
		return tmemWant{op: hypercall.OpTmem, layout: tmemA0New, fields: f}
	}
	return tmemWant{op: hypercall.OpTmem, layout: tmemA1Creat, fields: f}
}

// page is a tmem_op read as u.gen; the object id goes to "object" on A0.
func pageOp(g Generation, cmd, pool uint64, oid [3]uint64, index, cmfn uint64) tmemWant {
	if g == GenA0 {
		return tmemWant{op: hypercall.OpTmem, layout: tmemA0Gen, fields: F{"cmd": cmd, "pool_id": pool, "object": oid[0], "index": index, "cmfn": cmfn}}
	}
	return tmemWant{op: hypercall.OpTmem, layout: tmemA1Gen, fields: F{"cmd": cmd, "pool_id": pool,
		"oid[0]": oid[0], "oid[1]": oid[1], "oid[2]": oid[2], "index": index, "cmfn": cmfn}}
}

// specFlags is the pool flags word with g's spec version (0 on A0).
func specFlags(g Generation, bits uint64) uint64 {
	if g == GenA0 {
		return bits
	}
	return 1<<24 | bits
}

// tmemOpCase is one operation, run on every generation.
type tmemOpCase struct {
	name string
	run  func(cl *Client) (any, error)
	// reply answers the n-th tmem call (default: 0).
	reply func(g Generation, n int, c *tmemCall) (uint64, error)
	want  func(g Generation) tmemExpect
	// none is the Have of the *UnsupportedError on Xen 4.13+ ("4.0–4.12"
	// if empty).
	none string
	res  func(g Generation) any   // expected result when err is nil
	err  func(g Generation) error // expected sentinel, nil for success
}

func rc(v uint64) func(Generation, int, *tmemCall) (uint64, error) {
	return func(Generation, int, *tmemCall) (uint64, error) { return v, nil }
}

func fail(e hypercall.Errno) func(Generation, int, *tmemCall) (uint64, error) {
	return func(Generation, int, *tmemCall) (uint64, error) { return 0, e }
}

func is(err error) func(Generation) error { return func(Generation) error { return err } }

func res(v any) func(Generation) any { return func(Generation) any { return v } }

var (
	tmemU    = UUID{Lo: 0x8899aabbccddeeff, Hi: 0x0011223344556677}
	tmemOID1 = [3]uint64{0x1111}
	tmemOID3 = [3]uint64{0x1111, 0x2222, 0x3333}
)

const (
	listAllSize = 1134592 // 1024 × (18 + 17 × 64) rounded up to pages
	listOneSize = 20480   // max(16 KiB, 17 KiB) rounded up to pages
)

func tmemSentinelName(err error) string {
	for _, s := range []struct {
		name string
		err  error
	}{{"ErrNotSupported", ErrNotSupported}, {"ErrBadInput", ErrBadInput}, {"ErrFrozen", ErrFrozen},
		{"ErrEmpty", ErrEmpty}, {"ErrNoPool", ErrNoPool}, {"ErrNoClient", ErrNoClient}, {"ErrNoTmem", ErrNoTmem},
		{"ErrInterfaceVersion", ErrInterfaceVersion}, {"ErrInvalid", ErrInvalid}, {"ErrListFormat", ErrListFormat},
		{"ErrNoMemory", ErrNoMemory}, {"ErrFailed", ErrFailed}} {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return "unknown error"
}

// TestTmemOps runs every operation on every generation against the fake,
// checks each hypercall's number and argument bytes against the field
// tables of xen-tmem-abi.md §3, §4, §5 and §6.6, the result and the error,
// and pins the argument images in testdata/tmem/<generation>.hex.
func TestTmemOps(t *testing.T) {
	cases := tmemOpCases()
	for _, g := range tmemGens {
		sections := map[string]string{}
		t.Run(g.String(), func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) { sections[tc.name] = runTmemOpCase(t, g, tc) })
			}
		})
		checkTmemGolden(t, g, cases, sections)
	}
}

func runTmemOpCase(t *testing.T, g Generation, tc tmemOpCase) string {
	var reply func(int, *tmemCall) (uint64, error)
	if tc.reply != nil {
		reply = func(n int, c *tmemCall) (uint64, error) { return tc.reply(g, n, c) }
	}
	f, cl, _ := newTmemFake(t, g, reply)
	got, err := tc.run(cl)

	exp := tmemExpect{have: haveTmem}
	if g != GenNone {
		exp = tc.want(g)
	} else if tc.none != "" {
		exp.have = tc.none
	}
	var sb strings.Builder
	if exp.have != "" {
		var ue *UnsupportedError
		if !errors.As(err, &ue) || !errors.Is(err, ErrNotSupported) {
			t.Fatalf("got %v, want an *UnsupportedError matching ErrNotSupported", err)
		}
		if ue.Have != exp.have || ue.Running != tmemVersion(g) {
			t.Errorf("UnsupportedError{Have: %q, Running: %s}, want Have %q, Running %s", ue.Have, ue.Running, exp.have, tmemVersion(g))
		}
		if len(f.calls) != 0 {
			t.Errorf("%d tmem hypercalls made, want none", len(f.calls))
		}
		fmt.Fprintf(&sb, "-- unsupported: %s (available in Xen %s)\n", ue.Op, ue.Have)
		return sb.String()
	}

	if len(f.calls) != len(exp.calls) {
		t.Errorf("%d tmem hypercalls, want %d", len(f.calls), len(exp.calls))
	}
	for i, w := range exp.calls {
		if i >= len(f.calls) {
			break
		}
		c := f.calls[i]
		if c.op != w.op {
			t.Errorf("call %d: hypercall %d (%s), want %d (%s)", i+1, c.op, c.op, w.op, w.op)
		}
		if len(c.arg) != w.layout.size {
			t.Fatalf("call %d: %d-byte argument, want %d", i+1, len(c.arg), w.layout.size)
		}
		if diff := cmp.Diff(w.layout.render(w.layout.build(t, w.fields)), w.layout.render(c.arg)); diff != "" {
			t.Errorf("call %d: %s (-want +got):\n%s", i+1, w.layout.name, diff)
		}
		if (c.ptr != 0) != w.ptr {
			t.Errorf("call %d: buffer pointer %#x, want set: %v", i+1, c.ptr, w.ptr)
		}
		answer := fmt.Sprint(c.rc)
		if c.err != nil {
			answer = tmemErrnoText(c.err)
		}
		fmt.Fprintf(&sb, "-- call %d: hypercall %d (%s), answered %s\n%s", i+1, c.op, c.op, answer, w.layout.render(c.arg))
		if w.bufL != nil {
			if len(c.sent) < w.bufL.size {
				t.Fatalf("call %d: %d-byte buffer, want %d", i+1, len(c.sent), w.bufL.size)
			}
			sent := c.sent[:w.bufL.size]
			if diff := cmp.Diff(w.bufL.render(w.bufL.build(t, w.bufF)), w.bufL.render(sent)); diff != "" {
				t.Errorf("call %d: buffer %s (-want +got):\n%s", i+1, w.bufL.name, diff)
			}
			fmt.Fprintf(&sb, "-- buf: %s\n%s", w.bufL.name, w.bufL.render(sent))
		}
	}

	var wantErr error
	if tc.err != nil {
		wantErr = tc.err(g)
	}
	switch {
	case wantErr == nil && err != nil:
		t.Fatalf("error %v, want none", err)
	case wantErr != nil && !errors.Is(err, wantErr):
		t.Fatalf("error %v, want one matching %s", err, tmemSentinelName(wantErr))
	case err != nil:
		fmt.Fprintf(&sb, "-- error matching %s\n", tmemSentinelName(err))
		return sb.String()
	}
	if tc.res != nil {
		if diff := cmp.Diff(tc.res(g), got); diff != "" {
			t.Errorf("result (-want +got):\n%s", diff)
		}
	}
	if got != nil {
		fmt.Fprintf(&sb, "-- result: %+v\n", got)
	}
	return sb.String()
}

// checkTmemGolden compares the sections of the cases that ran with the
// golden file, or rewrites it with -update (all cases must have run).
func checkTmemGolden(t *testing.T, g Generation, cases []tmemOpCase, sections map[string]string) {
	t.Helper()
	if tmemUpdate() {
		if len(sections) != len(cases) {
			t.Fatalf("-update needs every case of TestTmemOps to run (%d of %d ran)", len(sections), len(cases))
		}
		var sb strings.Builder
		sb.WriteString(tmemGoldenHeader(g))
		for _, tc := range cases {
			fmt.Fprintf(&sb, "\n== %s\n%s", tc.name, sections[tc.name])
		}
		if err := os.WriteFile(tmemGoldenPath(g), []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	golden := readTmemGolden(t, g)
	for name, got := range sections {
		want, ok := golden[name]
		if !ok {
			t.Errorf("%s: no section %q in %s (regenerate with -update)", g, name, tmemGoldenPath(g))
			continue
		}
		if diff := cmp.Diff(strings.TrimSpace(want), strings.TrimSpace(got)); diff != "" {
			t.Errorf("%s: %s differs from %s (-golden +got):\n%s", g, name, tmemGoldenPath(g), diff)
		}
	}
}
