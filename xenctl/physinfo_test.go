package xenctl

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Golden: physinfo replies of real Xen 4.17.7 and 4.12.4 decode to what those
// hypervisors printed (reference/xen-golden).
func TestPhysinfoGolden(t *testing.T) {
	tests := []struct {
		name string
		ver  Version
		raw  string
		want Physinfo
	}{
		{"4.17.7", Version{4, 17, ".7"}, rawPhysinfo417, Physinfo{
			ThreadsPerCore: 1, CoresPerSocket: 1, NrCPUs: 1, MaxCPUID: 0, NrNodes: 1, MaxNodeID: 63,
			CPUKHz: 1999999, Capabilities: 0x30b, TotalPages: 524159, FreePages: 387194, MaxMFN: 0x7ffdf,
			HWCap: [8]uint32{0x0fcbf3fd, 0xf6d8320b, 0xec500800, 0x75, 0x5, 0x018843a9, 0x20c}}},
		{"4.12.4", Version{4, 12, ".4"}, rawPhysinfo412, Physinfo{
			ThreadsPerCore: 1, CoresPerSocket: 1, NrCPUs: 1, NrNodes: 1, MaxNodeID: 63,
			CPUKHz: 2003234, Capabilities: 0x3, TotalPages: 524159, FreePages: 386393, MaxMFN: 0x7ffdf,
			HWCap: [8]uint32{0x0fcbf3fd, 0xf6d8320b, 0xec500800, 0x75, 0x5, 0x018843a9, 0xc}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iv, _ := SysctlInterfaceVersion(tt.ver)
			f := &fakeXen{t: t, ver: tt.ver, iface: iv, physinfo: physinfoUnion(t, tt.raw)}
			got, err := f.client(t).Physinfo()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			if got.TotalKiB() != 2096636 {
				t.Errorf("TotalKiB = %d, want 2096636 (Xen: System RAM 2047MB (2096636kB))", got.TotalKiB())
			}
		})
	}
}

// Every layout puts total/free pages where the abi doc says: write the two
// values at the documented offsets and decode with each release.
func TestPhysinfoLayouts(t *testing.T) {
	tests := []struct {
		ver                 Version
		totalOff, freeOff   int
		outstandingOff, cap int
	}{
		{Version{4, 0, ".4"}, 24, 32, -1, 96},
		{Version{4, 1, ".0"}, 32, 40, -1, 88},
		{Version{4, 2, ".0"}, 32, 40, -1, 88},
		{Version{4, 3, ".0"}, 32, 40, 56, 96},
		{Version{4, 9, ".0"}, 32, 40, 56, 96},
		{Version{4, 10, ".0"}, 32, 40, 56, 28},
		{Version{4, 16, ".0"}, 32, 40, 56, 28},
		{Version{4, 17, ".0"}, 40, 48, 64, 28},
		{Version{4, 19, ".0"}, 40, 48, 64, 28},
	}
	for _, tt := range tests {
		t.Run(tt.ver.String(), func(t *testing.T) {
			u := make([]byte, 128)
			put64 := func(off int, v uint64) {
				for i := 0; i < 8; i++ {
					u[off+i] = byte(v >> (8 * i))
				}
			}
			put64(tt.totalOff, 1000)
			put64(tt.freeOff, 600)
			if tt.outstandingOff >= 0 {
				put64(tt.outstandingOff, 7)
			}
			u[tt.cap] = 0x5
			p, err := DecodePhysinfo(tt.ver, u)
			if err != nil {
				t.Fatal(err)
			}
			want := Physinfo{TotalPages: 1000, FreePages: 600, Capabilities: 5}
			if tt.outstandingOff >= 0 {
				want.OutstandingPages = 7
			}
			if diff := cmp.Diff(want, p); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// Once the client exists, a physinfo call allocates nothing.
func TestPhysinfoAllocations(t *testing.T) {
	f := &fakeXen{t: t, ver: Version{4, 17, ".7"}, iface: 0x15, physinfo: physinfoUnion(t, rawPhysinfo417)}
	cl := f.client(t)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := cl.Physinfo(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Physinfo allocates %.1f times per call, want 0", allocs)
	}
}

func BenchmarkPhysinfo(b *testing.B) {
	f := &fakeXen{t: b, ver: Version{4, 17, ".7"}, iface: 0x15, physinfo: physinfoUnion(b, rawPhysinfo417)}
	cl := f.client(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cl.Physinfo(); err != nil {
			b.Fatal(err)
		}
	}
}
