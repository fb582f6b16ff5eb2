package xenctl

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDomains(t *testing.T) {
	for _, ver := range []Version{{4, 0, ".4"}, {4, 2, ".0"}, {4, 12, ".4"}, {4, 16, ".0"}, {4, 17, ".7"}} {
		t.Run(ver.String(), func(t *testing.T) {
			var doms []DomainInfo
			// 600 domains: more than one batch of 256.
			for i := 0; i < 600; i++ {
				d := DomainInfo{ID: uint16(i * 3), Flags: 1 << 5, TotPages: uint64(1000 + i), MaxPages: uint64(2000 + i),
					ShrPages: 1, CPUTimeNs: uint64(i) << 20, OnlineVCPUs: 2, MaxVCPUID: 1, CPUPool: 0}
				d.Handle[0], d.Handle[15] = byte(i), 0xAB
				if ver.AtLeast(4, 3) {
					d.OutstandingPages = 5
				}
				doms = append(doms, d)
			}
			iv, _ := SysctlInterfaceVersion(ver)
			f := &fakeXen{t: t, ver: ver, iface: iv, domains: doms}
			got, err := f.client(t).Domains()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(doms, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestDomainInfoAccessors(t *testing.T) {
	d := DomainInfo{ID: 3, Flags: 1<<5 | 1<<3 | 1<<1, TotPages: 131072, MaxPages: 262144}
	d.Handle = [16]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8}
	if got, want := d.UUID(), "12345678-9abc-def0-0102-030405060708"; got != want {
		t.Errorf("UUID = %s, want %s", got, want)
	}
	if diff := cmp.Diff([]string{"running", "paused"}, d.State()); diff != "" {
		t.Errorf("State (-want +got)\n%s", diff)
	}
	if !d.HVM() || d.MemoryKiB() != 524288 || d.MaxMemoryKiB() != 1048576 {
		t.Errorf("HVM %v, MemoryKiB %d, MaxMemoryKiB %d", d.HVM(), d.MemoryKiB(), d.MaxMemoryKiB())
	}
}

// A record layout that does not match the running Xen shows up as domain
// ids out of order, and is reported instead of decoded into garbage.
func TestDomainsLayoutMismatch(t *testing.T) {
	// Decoded 8 bytes too far on, record 1's id is the low bits of its
	// tot_pages: 0, which is not after domain 0.
	doms := []DomainInfo{{ID: 0, TotPages: 1}, {ID: 5, TotPages: 0}}
	// The fake encodes 4.2 records (88 bytes); the client expects 4.3 (96).
	f := &fakeXen{t: t, ver: Version{4, 3, ".0"}, iface: 0x0A, domains: doms}
	cl := f.client(t)
	f.ver = Version{4, 2, ".0"}
	_, err := cl.Domains()
	if err == nil {
		t.Fatal("want an error for a layout mismatch")
	}
	if errors.Is(err, ErrNotSupported) {
		t.Errorf("unexpected sentinel: %v", err)
	}
}
