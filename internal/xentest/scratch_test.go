package xentest

import (
	"context"
	"path/filepath"
	"testing"
)

func TestScratch(t *testing.T) {
	dir := t.TempDir()
	xdk := filepath.Join(dir, "xendebugkeys")
	if err := BuildGuest(xdk, "./internal/xentest/cmd/xendebugkeys", false); err != nil {
		t.Fatal(err)
	}
	m := Prepare(t)
	log, err := Boot(context.Background(), t, BootConfig{
		Files:      map[string]string{"/xt/xendebugkeys": xdk},
		Modules:    []string{m.PrivcmdKO},
		Env:        map[string]string{"XENTMEM_IN_DOM0": "1"},
		InitScript: "ls -l /dev/xen; cat /sys/hypervisor/version/*; env; /xt/xendebugkeys m; /xt/xendebugkeys q; /xt/xendebugkeys m",
	})
	t.Log(log)
	if err != nil {
		t.Fatal(err)
	}
}
