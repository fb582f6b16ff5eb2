package xenctl

import (
	"testing"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/hypercall/hypercalltest"
)

// tmemQuietClient is a Client over a fake that answers every tmem call
// with rc and allocates nothing.
func tmemQuietClient(tb testing.TB, g Generation, rc uint64) *Client {
	tb.Helper()
	v := tmemVersion(g)
	c := hypercalltest.New(func(op hypercall.Op, args hypercall.Args, mem *hypercalltest.Memory) (uint64, error) {
		if op != hypercall.OpXenVersion {
			return rc, nil
		}
		if args[0] == hypercall.XENVER_version {
			return uint64(v.Major)<<16 | uint64(v.Minor), nil
		}
		b, err := mem.Bytes(args[1], hypercall.XenExtraversionLen)
		if err != nil {
			return 0, err
		}
		copy(b, v.Extra+"\x00")
		return 0, nil
	})
	cl, err := New(c, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cl.Close() })
	return cl
}

// tmemHotOps are the operations a pressure daemon issues in its loop.
var tmemHotOps = []struct {
	name string
	gens []Generation
	run  func(cl *Client) error
}{
	{"QueryFreeableMiB", tmemRealGens, func(cl *Client) error { _, err := cl.QueryFreeableMiB(); return err }},
	{"Flush", tmemRealGens, func(cl *Client) error { _, err := cl.Flush(AllClients, 1024); return err }},
	{"Freeze", tmemRealGens, func(cl *Client) error { return cl.Freeze(AllClients) }},
	{"Thaw", tmemRealGens, func(cl *Client) error { return cl.Thaw(AllClients) }},
	{"SetWeight", []Generation{GenA0, GenA1, GenB}, func(cl *Client) error { return cl.SetWeight(3, 7) }},
	{"PutPage", tmemRealGens, func(cl *Client) error { return cl.PutPage(1, tmemOID1, 42, 0xabcde) }},
	{"GetPage", tmemRealGens, func(cl *Client) error { _, err := cl.GetPage(1, tmemOID1, 42, 0xabcde); return err }},
}

// TestTmemAllocations checks that the hot control and page operations
// allocate nothing on the success path.
func TestTmemAllocations(t *testing.T) {
	for _, op := range tmemHotOps {
		for _, g := range op.gens {
			cl := tmemQuietClient(t, g, 1)
			if err := op.run(cl); err != nil {
				t.Fatalf("%s on %s: %v", op.name, g, err)
			}
			if n := testing.AllocsPerRun(100, func() { op.run(cl) }); n != 0 {
				t.Errorf("%s on %s: %v allocations per call, want 0", op.name, g, n)
			}
		}
	}
}

func BenchmarkTmem(b *testing.B) {
	for _, op := range tmemHotOps {
		for _, g := range op.gens {
			b.Run(op.name+"/"+g.String(), func(b *testing.B) {
				cl := tmemQuietClient(b, g, 1)
				b.ReportAllocs()
				for b.Loop() {
					if err := op.run(cl); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
