package xensim

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/xenctl"
)

// xenctl on top of the simulator, for every release it knows: the typed
// layer must work unchanged against any emulated Xen.

var everyRelease = []string{
	"4.0.0", "4.0.1", "4.0.2", "4.0.4", "4.1.0", "4.1.3", "4.1.4", "4.1.6", "4.2.0", "4.2.1", "4.2.5",
	"4.3.0", "4.3.4", "4.4.0", "4.4.4", "4.5.0", "4.5.5", "4.6.0", "4.6.6", "4.7.0", "4.7.6",
	"4.8.0", "4.8.5", "4.9.0", "4.9.4", "4.10.0", "4.10.4", "4.11.0", "4.11.4", "4.12.0", "4.12.4",
	"4.13.0", "4.13.5", "4.14.6", "4.15.5", "4.16.6", "4.17.7", "4.18.5", "4.19.0", "4.20.1", "4.21.0", "4.22.0",
}

func newXenctl(t testing.TB, c hypercall.Caller) *xenctl.Client {
	t.Helper()
	cl, err := xenctl.New(c, nil)
	if err != nil {
		t.Fatalf("xenctl.New: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func TestXenctlEveryRelease(t *testing.T) {
	for _, v := range everyRelease {
		t.Run(v, func(t *testing.T) {
			s, err := New(&Config{Version: v, Dom0MaxMemoryKiB: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			id, err := s.CreateDomain(DomainConfig{MemoryKiB: 256 << 10, MaxMemoryKiB: 512 << 10, VCPUs: 2})
			if err != nil {
				t.Fatal(err)
			}
			cl := newXenctl(t, s)
			if got := cl.Version().String(); got != v {
				t.Errorf("version %s", got)
			}
			want, _ := xenctl.SysctlInterfaceVersion(cl.Version())
			if got := cl.SysctlInterfaceVersion(); got != want || got != s.rel.iface {
				t.Errorf("interface version %#x, want %#x", got, want)
			}
			total, free := s.Physinfo()
			pi, err := cl.Physinfo()
			if err != nil {
				t.Fatal(err)
			}
			if pi.TotalPages != total || pi.FreePages != free {
				t.Errorf("physinfo total %d free %d, sim %d %d", pi.TotalPages, pi.FreePages, total, free)
			}
			doms, err := cl.Domains()
			if err != nil {
				t.Fatal(err)
			}
			if len(doms) != 2 || doms[0].ID != 0 || doms[1].ID != id || doms[1].TotPages != 65536 || doms[1].MaxPages != 131072 || doms[1].OnlineVCPUs != 2 {
				t.Errorf("domains %+v", doms)
			}
			st, err := cl.ProbeTmem()
			if err != nil {
				t.Fatal(err)
			}
			if st.Available != s.rel.tmemABI() || st.Generation != cl.Generation() {
				t.Errorf("probe: %+v", st)
			}
			if s.rel.tmemABI() {
				tmemRoundTrip(t, s, cl, id)
			}
		})
	}
}

// tmemRoundTrip drives tmem through xenctl: a guest creates pools and puts
// pages, dom0 lists, freezes, weighs and flushes.
func tmemRoundTrip(t *testing.T, s *Sim, cl *xenctl.Client, id uint16) {
	t.Helper()
	gc := newXenctl(t, s.Guest(id))
	eph, err := gc.NewPool(xenctl.PoolSpec{})
	if err != nil {
		t.Fatalf("guest NewPool: %v", err)
	}
	per, err := gc.NewPool(xenctl.PoolSpec{Persistent: true})
	if err != nil {
		t.Fatalf("guest NewPool persistent: %v", err)
	}
	mem := s.GuestMemory(id)
	page := bytes.Repeat([]byte("round trip "), 400)[:pageSize]
	mem.Write(10, page)
	for i := uint32(0); i < 8; i++ {
		if err := gc.PutPage(eph, [3]uint64{1}, i, 10); err != nil {
			t.Fatalf("put eph %d: %v", i, err)
		}
		if err := gc.PutPage(per, [3]uint64{2}, i, 10); err != nil {
			t.Fatalf("put pers %d: %v", i, err)
		}
	}
	if ok, err := gc.GetPage(eph, [3]uint64{1}, 3, 11); !ok || err != nil {
		t.Fatalf("get: %v %v", ok, err)
	}
	got := make([]byte, pageSize)
	mem.Read(11, got)
	if !bytes.Equal(got, page) {
		t.Error("GET returned other data")
	}
	if ok, _ := gc.GetPage(eph, [3]uint64{1}, 3, 11); ok {
		t.Error("second GET from an ephemeral pool hit")
	}
	text, err := cl.List(xenctl.AllClients, true)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	l, err := xenctl.ParseList(text)
	if err != nil {
		t.Fatalf("ParseList: %v\n%s", err, text)
	}
	c := l.Client(id)
	if c == nil || len(c.Pools) != 2 {
		t.Fatalf("list has no client %d with 2 pools:\n%s", id, text)
	}
	if again := l.Format(); !bytes.Equal(again, text) {
		t.Errorf("Format(ParseList(text)) differs:\n%s\n%s", text, again)
	}
	info, err := cl.ClientInfo(id)
	if err != nil || info.Pools != 2 {
		t.Errorf("ClientInfo: %+v %v", info, err)
	}
	if err := cl.Freeze(id); err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	if err := gc.PutPage(eph, [3]uint64{9}, 0, 10); !errors.Is(err, hypercall.EFROZEN) {
		t.Errorf("PUT while frozen: %v", err)
	}
	if err := cl.Thaw(id); err != nil {
		t.Fatalf("Thaw: %v", err)
	}
	if err := cl.SetWeight(id, 5); err != nil {
		t.Fatalf("SetWeight: %v", err)
	}
	if info, _ := cl.ClientInfo(id); info.Weight != 5 {
		t.Errorf("weight %d", info.Weight)
	}
	if _, err := cl.QueryFreeableMiB(); err != nil {
		t.Errorf("QueryFreeableMiB: %v", err)
	}
	kb, err := cl.Flush(xenctl.AllClients, 1<<20)
	if err != nil || kb == 0 {
		t.Errorf("Flush: %d %v", kb, err)
	}
	if ok, _ := gc.GetPage(eph, [3]uint64{1}, 4, 11); ok {
		t.Error("page survived a full flush")
	}
	if ok, err := gc.GetPage(per, [3]uint64{2}, 4, 11); !ok || err != nil {
		t.Errorf("persistent page lost by a flush: %v", err)
	}
	pools, err := cl.PoolInfo(id)
	if err != nil || len(pools) != 2 || pools[1].Pages != 8 {
		t.Errorf("PoolInfo: %+v %v", pools, err)
	}
	if err := s.DestroyDomain(id); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.List(id, false); !errors.Is(err, hypercall.EPERM) {
		t.Errorf("LIST of a dead domain: %v", err)
	}
}

func TestXenctlProbe(t *testing.T) {
	for _, c := range []struct {
		version string
		mode    TmemMode
		errno   hypercall.Errno
	}{
		{"4.0.0", TmemDisabled, hypercall.ENODEV},
		{"4.5.5", TmemDisabled, hypercall.ENODEV},
		{"4.12.4", TmemDisabled, hypercall.ENODEV},
		{"4.7.6", TmemNotBuilt, hypercall.ENOSYS},
		{"4.12.4", TmemNotBuilt, hypercall.ENOSYS},
		{"4.17.7", TmemEnabled, hypercall.ENOSYS},
	} {
		t.Run(fmt.Sprintf("%s/%d", c.version, c.mode), func(t *testing.T) {
			s, err := New(&Config{Version: c.version, Tmem: c.mode})
			if err != nil {
				t.Fatal(err)
			}
			st, err := newXenctl(t, s).ProbeTmem()
			if err != nil {
				t.Fatal(err)
			}
			if st.Available || st.Errno != c.errno {
				t.Errorf("probe %+v", st)
			}
		})
	}
}
