//go:build linux

package xenctl

import (
	"errors"
	"os"
	"testing"

	"github.com/xentmem/xentmem/hypercall"
)

func dom0Client(t *testing.T, cfg *Config) *Client {
	t.Helper()
	if _, err := os.Stat(hypercall.DefaultPrivcmdPath); err != nil {
		if os.Getenv("XENTMEM_IN_DOM0") == "1" {
			t.Fatalf("XENTMEM_IN_DOM0=1 but no privcmd: %v", err)
		}
		t.Skipf("not a Xen dom0 (%v); these run inside the QEMU dom0 of internal/xentest", err)
	}
	conn, err := hypercall.Open(nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := New(conn, cfg)
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cl.Close()
		if n := conn.LiveBuffers(); n != 0 {
			t.Errorf("%d hypercall buffers leaked", n)
		}
		conn.Close()
	})
	return cl
}

func TestIntegrationXen(t *testing.T) {
	cl := dom0Client(t, nil)
	v := cl.Version()
	pi, err := cl.Physinfo()
	if err != nil {
		t.Fatal(err)
	}
	if pi.TotalPages == 0 || pi.FreePages == 0 || pi.FreePages > pi.TotalPages || pi.NrCPUs == 0 {
		t.Errorf("implausible physinfo %+v", pi)
	}
	doms, err := cl.Domains()
	if err != nil {
		t.Fatal(err)
	}
	if len(doms) == 0 || doms[0].ID != 0 || doms[0].TotPages == 0 {
		t.Fatalf("dom0 missing from %+v", doms)
	}
	st, err := cl.ProbeTmem()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Xen %s iface %#x: %d pages, %d free, %d domains; tmem: %s", v, cl.SysctlInterfaceVersion(), pi.TotalPages, pi.FreePages, len(doms), st.Reason)
	if v.AtLeast(4, 13) && (st.Available || st.Errno != hypercall.ENOSYS) {
		t.Errorf("Xen %s: tmem %+v, want unavailable with ENOSYS", v, st)
	}
}

// Xen accepts exactly one sysctl interface version and refuses the others
// with EACCES.
func TestIntegrationWrongInterfaceVersion(t *testing.T) {
	good := dom0Client(t, nil).SysctlInterfaceVersion()
	cl := dom0Client(t, &Config{SysctlInterfaceVersion: good - 1})
	_, err := cl.Physinfo()
	if !errors.Is(err, ErrInterfaceVersion) || !errors.Is(err, hypercall.EACCES) {
		t.Fatalf("interface %#x: %v, want EACCES", good-1, err)
	}
}
