package xenctl

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    Version
		point   int
		wantErr bool
	}{
		{"4.12.4", Version{4, 12, ".4"}, 4, false},
		{"4.0.1-rc", Version{4, 0, ".1-rc"}, 1, false},
		{"4.17", Version{4, 17, ""}, -1, false},
		{"4.2-pre", Version{4, 2, "-pre"}, -1, false},
		{"4", Version{}, 0, true},
		{"x.1", Version{}, 0, true},
		{"4.", Version{}, 0, true},
		{"", Version{}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseVersion(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			if p := got.Point(); p != tt.point {
				t.Errorf("Point = %d, want %d", p, tt.point)
			}
		})
	}
}

func TestGenerationAndInterface(t *testing.T) {
	tests := []struct {
		ver   string
		gen   Generation
		iface uint32
	}{
		{"4.0.0", GenA0, 0x07}, {"4.0.1", GenA0, 0x07}, {"4.0.2", GenA1, 0x07},
		{"4.0.4", GenA1, 0x07}, {"4.1.0", GenA1, 0x08}, {"4.2.0", GenA1, 0x09},
		{"4.3.0", GenA1, 0x0A}, {"4.4.0", GenA1, 0x0A}, {"4.5.0", GenA1, 0x0B},
		{"4.6.0", GenB, 0x0C}, {"4.7.0", GenB, 0x0D}, {"4.8.0", GenC, 0x0E},
		{"4.9.0", GenD, 0x0F}, {"4.10.0", GenD, 0x10}, {"4.11.0", GenD, 0x11},
		{"4.12.4", GenD, 0x12}, {"4.13.0", GenNone, 0x12}, {"4.14.0", GenNone, 0x13},
		{"4.15.0", GenNone, 0x13}, {"4.16.0", GenNone, 0x14}, {"4.17.7", GenNone, 0x15},
		{"4.18.0", GenNone, 0x15}, {"4.19.0", GenNone, 0x15},
	}
	for _, tt := range tests {
		t.Run(tt.ver, func(t *testing.T) {
			v, err := ParseVersion(tt.ver)
			if err != nil {
				t.Fatal(err)
			}
			if g := GenerationOf(v); g != tt.gen {
				t.Errorf("GenerationOf = %v, want %v", g, tt.gen)
			}
			iv, ok := SysctlInterfaceVersion(v)
			if !ok || iv != tt.iface {
				t.Errorf("SysctlInterfaceVersion = %#x, %v; want %#x", iv, ok, tt.iface)
			}
		})
	}
	if _, ok := SysctlInterfaceVersion(Version{Major: 4, Minor: 99}); ok {
		t.Error("unknown release reported as known")
	}
}

// The client sends the interface version of the running release, and Xen
// (here: the fake, like the real one) refuses any other with EACCES.
func TestClientInterfaceVersion(t *testing.T) {
	for _, tt := range []struct {
		ver   Version
		iface uint32
	}{
		{Version{4, 12, ".4"}, 0x12},
		{Version{4, 17, ".7"}, 0x15},
		{Version{4, 3, ".0"}, 0x0A},
	} {
		f := &fakeXen{t: t, ver: tt.ver, iface: tt.iface, physinfo: make([]byte, 128)}
		cl := f.client(t)
		if got := cl.SysctlInterfaceVersion(); got != tt.iface {
			t.Errorf("%v: interface %#x, want %#x", tt.ver, got, tt.iface)
		}
		if _, err := cl.Physinfo(); err != nil {
			t.Errorf("%v: Physinfo: %v", tt.ver, err)
		}
	}
}

// A release newer than the table: the interface version is found by probing.
func TestClientProbesUnknownInterface(t *testing.T) {
	f := &fakeXen{t: t, ver: Version{4, 23, ".0"}, iface: 0x17, physinfo: make([]byte, 128)}
	cl := f.client(t)
	if got := cl.SysctlInterfaceVersion(); got != 0x17 {
		t.Errorf("probed interface %#x, want 0x17", got)
	}
	// An override wins over the probe.
	cl2, err := New(f.caller(), &Config{SysctlInterfaceVersion: 0x17})
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	if got := cl2.SysctlInterfaceVersion(); got != 0x17 {
		t.Errorf("override: %#x", got)
	}
}
