package xentest

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testdata/xen-4.17.7-serial.log is a real serial log of TestIntegrationXen417
// (Debian's Xen 4.17.7, kernel 6.1.0-56-amd64), with the compiled tests'
// output (between the second debug-key dump and @@XENTEST-DONE) cut out.
func readLog(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/xen-4.17.7-serial.log")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseXenConsole(t *testing.T) {
	c := ParseXenConsole(readLog(t))
	// Line numbers are not part of the comparison.
	for i := range c.Heaps {
		c.Heaps[i].Line = 0
	}
	for i := range c.Dom0 {
		c.Dom0[i].Line = 0
	}
	want := XenConsole{
		Version:     "4.17.7",
		CommandLine: "console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all dom0_mem=512M,max:512M smap=0",
		SystemRAMKB: 2096636,
		CPUKHz:      1999999,
		Heaps:       []Mark{{KB: 1548776}, {KB: 1548776}},
		Dom0:        []Dom0Pages{{NrPages: 131072, MaxPages: 131072}, {NrPages: 131072, MaxPages: 131072}},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("ParseXenConsole (-want +got):\n%s", diff)
	}
}

func TestSection(t *testing.T) {
	log := "x\r\n@@B@@\r\n(XEN) noise\r\n[    1.000000] kernel\r\nline 1\r\n  line 2\r\n@@E exit=3@@\r\n"
	tests := []struct {
		name, begin, end string
		body             []string
		endLine          string
		ok               bool
	}{
		{"found", "@@B@@", "@@E", []string{"line 1", "  line 2"}, "@@E exit=3@@", true},
		{"no end", "@@B@@", "@@F", []string{"line 1", "  line 2", "@@E exit=3@@", ""}, "", false},
		{"no begin", "@@A@@", "@@E", nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, end, ok := Section(log, tt.begin, tt.end)
			if diff := cmp.Diff(tt.body, body); diff != "" || end != tt.endLine || ok != tt.ok {
				t.Errorf("Section = %q, %q, %v; want %q, %v (-want +got body):\n%s", body, end, ok, tt.endLine, tt.ok, diff)
			}
		})
	}
}

func TestSentinelInt(t *testing.T) {
	tests := []struct {
		line, key string
		n         int
		ok        bool
	}{
		{"@@TEST hypercall exit=0@@", "exit", 0, true},
		{"@@XENINFO-END exit=1@@", "exit", 1, true},
		{"@@XENTEST-DONE rc=2 uptime=7.20@@", "rc", 2, true},
		{"@@XENTEST-DONE rc=x@@", "rc", 0, false},
		{"@@TEST hypercall@@", "exit", 0, false},
	}
	for _, tt := range tests {
		n, ok := SentinelInt(tt.line, tt.key)
		if n != tt.n || ok != tt.ok {
			t.Errorf("SentinelInt(%q, %q) = %d, %v; want %d, %v", tt.line, tt.key, n, ok, tt.n, tt.ok)
		}
	}
}
