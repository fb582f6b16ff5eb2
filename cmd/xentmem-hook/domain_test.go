package main

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func ptr[T any](v T) *T { return &v }

// doc wraps a <tmem> body (and extra domain children) into a domain.
func doc(tmem, extra string) string {
	return `<domain type='xen'><name>vm</name><memory>2048</memory>` + extra +
		`<metadata><t:tmem xmlns:t="https://xentmem.dev/xmlns/tmem/1">` + tmem + `</t:tmem></metadata></domain>`
}

func TestParseDomain(t *testing.T) {
	web1, err := os.ReadFile("testdata/web1.xml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		in          string
		want        *domain
		settingsErr bool
		err         error
	}{
		{name: "web1", in: string(web1), want: &domain{Name: "web1", ID: "7", MemoryKiB: 1 << 20,
			Settings: settings{Weight: ptr[uint32](20), Compress: ptr(true), ReserveMiB: ptr[uint64](256)},
			Cowd: []cowdDisk{
				{Disk: "xvda", Cow: "/var/lib/xen/cow/web1.dscow", Base: "/var/lib/xen/images/golden.img", Format: "dscow", NBD: "/dev/nbd0"},
				{Disk: "xvdb", Cow: "/var/lib/xen/cow/web1-data.qcow2", Format: "qcow2", NBD: "auto"},
			}}},
		{name: "no metadata", in: `<domain><name> vm </name><memory unit='GiB'>2</memory></domain>`,
			want: &domain{Name: "vm", MemoryKiB: 2 << 20}},
		{name: "currentMemory wins", in: `<domain><name>vm</name><currentMemory unit='M'>512</currentMemory><memory unit='G'>1</memory></domain>`,
			want: &domain{Name: "vm", MemoryKiB: 512 << 10}},
		{name: "decimal unit rounds up", in: `<domain><name>vm</name><memory unit='KB'>1</memory></domain>`,
			want: &domain{Name: "vm", MemoryKiB: 1}},
		{name: "bytes", in: `<domain><name>vm</name><memory unit='bytes'>1048577</memory></domain>`,
			want: &domain{Name: "vm", MemoryKiB: 1025}},
		{name: "default namespace and prefix on domain",
			in: `<domain xmlns:x="https://xentmem.dev/xmlns/tmem/1"><name>vm</name><metadata><tmem xmlns="https://xentmem.dev/xmlns/tmem/1"><weight>3</weight><cowd disk="xvda" cow="/c"/></tmem></metadata></domain>`,
			want: &domain{Name: "vm", Settings: settings{Weight: ptr[uint32](3)},
				Cowd: []cowdDisk{{Disk: "xvda", Cow: "/c", Format: "dscow", NBD: "auto"}}}},
		{name: "other namespace ignored",
			in:   `<domain><name>vm</name><metadata><tmem xmlns="urn:other"><weight>3</weight><cowd disk="xvda" cow="/c"/></tmem></metadata></domain>`,
			want: &domain{Name: "vm"}},
		{name: "bad setting keeps cowd", in: doc(`<t:weight>-1</t:weight><t:compress>on</t:compress><t:cowd disk="xvda" cow="/c"/>`, ""),
			want:        &domain{Name: "vm", MemoryKiB: 2048, Cowd: []cowdDisk{{Disk: "xvda", Cow: "/c", Format: "dscow", NBD: "auto"}}},
			settingsErr: true},
		{name: "setting twice", in: doc(`<t:weight>1</t:weight><t:weight>2</t:weight>`, ""),
			want: &domain{Name: "vm", MemoryKiB: 2048}, settingsErr: true},
		{name: "text in tmem", in: doc(`hello<t:weight>1</t:weight>`, ""),
			want: &domain{Name: "vm", MemoryKiB: 2048}, settingsErr: true},
		{name: "relative cow", in: doc(`<t:cowd disk="xvda" cow="c.dscow"/>`, ""), err: errCowd},
		{name: "bad disk", in: doc(`<t:cowd disk="../x" cow="/c"/>`, ""), err: errCowd},
		{name: "bad format", in: doc(`<t:cowd disk="xvda" cow="/c" format="vhd"/>`, ""), err: errCowd},
		{name: "bad nbd", in: doc(`<t:cowd disk="xvda" cow="/c" nbd="/dev/sda"/>`, ""), err: errCowd},
		{name: "disk twice", in: doc(`<t:cowd disk="xvda" cow="/c"/><t:cowd disk="xvda" cow="/d"/>`, ""), err: errCowd},
		{name: "not a domain", in: `<network><name>x</name></network>`, err: errDomainXML},
		{name: "no name", in: `<domain><memory>1</memory></domain>`, err: errDomainXML},
		{name: "bad unit", in: `<domain><name>vm</name><memory unit='parsecs'>1</memory></domain>`, err: errDomainXML},
		{name: "overflow", in: `<domain><name>vm</name><memory unit='EiB'>100</memory></domain>`, err: errDomainXML},
		{name: "truncated", in: `<domain><name>vm</name>`, err: errDomainXML},
		{name: "empty", in: ``, err: errDomainXML},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDomain(strings.NewReader(tt.in), defaultNamespace)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got.SettingsErr != nil) != tt.settingsErr {
				t.Errorf("SettingsErr = %v, want error %v", got.SettingsErr, tt.settingsErr)
			}
			if got.SettingsErr != nil && !errors.Is(got.SettingsErr, errTmem) {
				t.Errorf("SettingsErr %v does not wrap errTmem", got.SettingsErr)
			}
			got.SettingsErr = nil
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("domain (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMemoryMiB(t *testing.T) {
	for _, tt := range []struct{ kib, mib uint64 }{{0, 0}, {1, 1}, {1024, 1}, {1025, 2}, {1 << 20, 1024}} {
		if got := (&domain{MemoryKiB: tt.kib}).MemoryMiB(); got != tt.mib {
			t.Errorf("MemoryMiB(%d KiB) = %d, want %d", tt.kib, got, tt.mib)
		}
	}
}

func FuzzParseDomain(f *testing.F) {
	if web1, err := os.ReadFile("testdata/web1.xml"); err == nil {
		f.Add(string(web1))
	}
	f.Add(doc(`<t:weight>1</t:weight><t:cowd disk="xvda" cow="/c" nbd="auto"/>`, `<currentMemory unit="MiB">3</currentMemory>`))
	f.Add(`<domain><name>x</name></domain>`)
	f.Add(`<domain id="1"><name>x</name><metadata><tmem xmlns="https://xentmem.dev/xmlns/tmem/1"><compress>yes</compress></tmem></metadata></domain>`)
	f.Fuzz(func(t *testing.T, in string) {
		d, err := parseDomain(strings.NewReader(in), defaultNamespace)
		if err != nil {
			return
		}
		if d.Name == "" {
			t.Error("a parsed domain has no name")
		}
		if d.SettingsErr != nil && d.Settings != (settings{}) {
			t.Error("invalid settings were kept")
		}
		for _, c := range d.Cowd {
			if !diskPattern.MatchString(c.Disk) || !strings.HasPrefix(c.Cow, "/") ||
				(c.Format != "dscow" && c.Format != "qcow2") || (c.NBD != "auto" && !nbdPattern.MatchString(c.NBD)) {
				t.Errorf("invalid cowd disk accepted: %+v", c)
			}
		}
	})
}
