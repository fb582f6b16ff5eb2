package main

import (
	"strings"
	"testing"

	"github.com/xentmem/xentmem/hypercall/xensim"
)

// TestXenInfo pins xen-info's text and JSON on a release with tmem and one
// without (xen-info talks to Xen directly, so it runs on the simulator's
// Caller here).
func TestXenInfo(t *testing.T) {
	var b strings.Builder
	for _, v := range []string{"4.12.4", "4.17.0"} {
		sim, err := xensim.New(&xensim.Config{Version: v})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sim.CreateDomain(xensim.DomainConfig{MemoryKiB: 256 << 10, VCPUs: 2}); err != nil {
			t.Fatal(err)
		}
		info, err := collectXenInfo(sim)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("$ tmemctl xen-info    # Xen " + v + "\n")
		if err := writeXenInfoText(&b, info); err != nil {
			t.Fatal(err)
		}
		b.WriteString("\n$ tmemctl xen-info -o json    # Xen " + v + "\n")
		if err := writeJSON(&b, info); err != nil {
			t.Fatal(err)
		}
		b.WriteString("\n")
	}
	golden(t, "xen-info.golden", b.String())
}
