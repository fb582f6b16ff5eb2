package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func lvPtr[T any](v T) *T { return &v }

func TestParseTmemMetadata(t *testing.T) {
	const ns = defaultTmemNamespace
	all := TmemSettings{Weight: lvPtr[uint32](20), Compress: lvPtr(true), Priority: lvPtr(5), ReserveMiB: lvPtr[uint64](1024)}
	tests := []struct {
		name string
		in   string
		want TmemSettings
		err  bool
	}{
		{name: "getmetadata reply (namespace stripped)", in: "<tmem>\n  <weight>20</weight>\n</tmem>",
			want: TmemSettings{Weight: lvPtr[uint32](20)}},
		{name: "prefixed element", in: `<tmem:tmem xmlns:tmem="` + ns + `"><tmem:weight>20</tmem:weight>` +
			`<tmem:compress>on</tmem:compress><tmem:priority>5</tmem:priority><tmem:reserve-mib>1024</tmem:reserve-mib></tmem:tmem>`,
			want: all},
		{name: "default namespace", in: `<tmem xmlns="` + ns + `"><weight>20</weight><compress>on</compress>` +
			`<priority>5</priority><reserve-mib>1024</reserve-mib></tmem>`, want: all},
		{name: "metadata wrapper", in: `<metadata><x:tmem xmlns:x="` + ns + `"><x:priority>-3</x:priority></x:tmem></metadata>`,
			want: TmemSettings{Priority: lvPtr(-3)}},
		{name: "domain document", in: `<domain type='xen'><name>a</name><metadata><o:tmem xmlns:o="urn:other"><o:weight>9</o:weight></o:tmem>` +
			`<t:tmem xmlns:t="` + ns + `"><t:weight>7</t:weight></t:tmem></metadata></domain>`,
			want: TmemSettings{Weight: lvPtr[uint32](7)}},
		{name: "empty element", in: `<tmem/>`, want: TmemSettings{}},
		{name: "spaces, comments, unknown and foreign children", in: `<tmem> <!-- c --><weight> 3 </weight><knob>x</knob>` +
			`<o:weight xmlns:o="urn:other">99</o:weight><compress>No</compress></tmem>`,
			want: TmemSettings{Weight: lvPtr[uint32](3), Compress: lvPtr(false)}},
		{name: "compress yes", in: `<tmem><compress>YES</compress></tmem>`, want: TmemSettings{Compress: lvPtr(true)}},
		{name: "compress 0", in: `<tmem><compress>0</compress></tmem>`, want: TmemSettings{Compress: lvPtr(false)}},
		{name: "limits", in: `<tmem><weight>4294967295</weight><priority>-2147483648</priority><reserve-mib>17592186044415</reserve-mib></tmem>`,
			want: TmemSettings{Weight: lvPtr[uint32](4294967295), Priority: lvPtr(-2147483648), ReserveMiB: lvPtr[uint64](17592186044415)}},

		{name: "negative weight", in: `<tmem><weight>-1</weight></tmem>`, err: true},
		{name: "weight overflow", in: `<tmem><weight>4294967296</weight></tmem>`, err: true},
		{name: "weight not a number", in: `<tmem><weight>heavy</weight></tmem>`, err: true},
		{name: "compress maybe", in: `<tmem><compress>maybe</compress></tmem>`, err: true},
		{name: "priority overflow", in: `<tmem><priority>2147483648</priority></tmem>`, err: true},
		{name: "reserve overflow", in: `<tmem><reserve-mib>17592186044416</reserve-mib></tmem>`, err: true},
		{name: "duplicate", in: `<tmem><weight>1</weight><weight>1</weight></tmem>`, err: true},
		{name: "empty value", in: `<tmem><weight> </weight></tmem>`, err: true},
		{name: "markup in value", in: `<tmem><weight><b>1</b></weight></tmem>`, err: true},
		{name: "text in tmem", in: `<tmem>weight=1</tmem>`, err: true},
		{name: "wrong root", in: `<settings><weight>1</weight></settings>`, err: true},
		{name: "tmem in another namespace", in: `<tmem xmlns="urn:other"><weight>1</weight></tmem>`, err: true},
		{name: "domain without tmem", in: `<domain><metadata/></domain>`, err: true},
		{name: "unqualified tmem inside metadata", in: `<metadata><tmem><weight>1</weight></tmem></metadata>`, err: true},
		{name: "truncated", in: `<tmem><weight>1</weight>`, err: true},
		{name: "truncated value", in: `<tmem><weight>1`, err: true},
		{name: "not xml", in: `weight=1`, err: true},
		{name: "empty", in: ``, err: true},
		{name: "too large", in: `<tmem>` + strings.Repeat(" ", maxTmemMetadata) + `</tmem>`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTmemMetadata([]byte(tt.in), ns)
			if tt.err {
				if !errors.Is(err, errTmemMetadata) {
					t.Fatalf("err = %v, want errTmemMetadata", err)
				}
				if !got.IsZero() {
					t.Errorf("settings returned with an error: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseTmemMetadataCustomNamespace(t *testing.T) {
	const ns = "urn:example:tmem"
	got, err := parseTmemMetadata([]byte(`<p:tmem xmlns:p="urn:example:tmem"><p:weight>4</p:weight></p:tmem>`), ns)
	if err != nil || got.Weight == nil || *got.Weight != 4 {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := parseTmemMetadata([]byte(`<p:tmem xmlns:p="`+defaultTmemNamespace+`"/>`), ns); err == nil {
		t.Error("default namespace accepted for a custom one")
	}
}

func TestFormatTmemMetadata(t *testing.T) {
	s := TmemSettings{Weight: lvPtr[uint32](20), Compress: lvPtr(true), Priority: lvPtr(5), ReserveMiB: lvPtr[uint64](1024)}
	got := formatTmemMetadata(s, defaultTmemNamespace, "tmem")
	want, err := os.ReadFile(filepath.Join("testdata", "libvirt", "metadata", "element.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(strings.TrimSpace(string(want)), got); diff != "" {
		t.Errorf("format (-want +got):\n%s", diff)
	}
	if got := formatTmemMetadata(TmemSettings{Compress: lvPtr(false)}, `urn:a&"b`, ""); got != `<tmem xmlns="urn:a&amp;&#34;b"><compress>off</compress></tmem>` {
		t.Errorf("format with default namespace = %s", got)
	}
}

func TestParseTmemMetadataFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "libvirt", "metadata", "*.xml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, err = parseTmemMetadata(data, defaultTmemNamespace)
		bad := strings.HasPrefix(filepath.Base(f), "bad-") || filepath.Base(f) == "duplicate.xml"
		if (err != nil) != bad {
			t.Errorf("%s: err = %v, want error: %v", f, err, bad)
		}
	}
}

// FuzzParseTmemMetadata checks that no input panics, that errors come with
// no settings, and that accepted settings survive format and parse again.
func FuzzParseTmemMetadata(f *testing.F) {
	for _, s := range []string{
		"<tmem>\n  <weight>20</weight>\n</tmem>",
		`<tmem><compress>on</compress><priority>-5</priority><reserve-mib>1024</reserve-mib></tmem>`,
		`<metadata><t:tmem xmlns:t="` + defaultTmemNamespace + `"><t:weight>1</t:weight></t:tmem></metadata>`,
		`<tmem><weight><b/></weight></tmem>`,
		`<tmem><weight>1</weight><weight>2</weight></tmem>`,
		`<domain><metadata></metadata></domain>`,
		`<tmem`,
	} {
		f.Add([]byte(s))
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "libvirt", "metadata", "*.xml"))
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parseTmemMetadata(data, defaultTmemNamespace)
		if err != nil {
			if !errors.Is(err, errTmemMetadata) {
				t.Fatalf("error does not wrap errTmemMetadata: %v", err)
			}
			if !s.IsZero() {
				t.Fatalf("settings with an error: %+v", s)
			}
			return
		}
		for _, prefix := range []string{"tmem", ""} {
			out := formatTmemMetadata(s, defaultTmemNamespace, prefix)
			again, err := parseTmemMetadata([]byte(out), defaultTmemNamespace)
			if err != nil {
				t.Fatalf("formatted settings do not parse: %v\n%s", err, out)
			}
			if diff := cmp.Diff(s, again); diff != "" {
				t.Fatalf("round trip (-first +second):\n%s", diff)
			}
		}
	})
}
