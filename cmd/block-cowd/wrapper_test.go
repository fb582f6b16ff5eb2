package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWrapper runs the shell wrapper installed as /etc/xen/scripts/block-cowd
// (docs/hotplug/block-cowd) with a stand-in for the program.
func TestWrapper(t *testing.T) {
	wrapper, err := filepath.Abs("../../docs/hotplug/block-cowd")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	os.Mkdir(logDir, 0o755)
	stub := filepath.Join(dir, "block-cowd")
	out := filepath.Join(dir, "out")
	os.WriteFile(stub, []byte("#!/bin/sh\necho \"$@ $XENBUS_PATH\" > "+out+"\necho 'block-cowd: stub ran' >&2\nexit 3\n"), 0o755)
	env := append(os.Environ(), "XEN_LOG_DIR="+logDir, "XENBUS_PATH=backend/vbd/5/51712")

	cmd := exec.Command("sh", wrapper, "add")
	cmd.Env = append(env, "BLOCK_COWD="+stub)
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Errorf("wrapper exit: %v, want the program's status 3", err)
	}
	if b, _ := os.ReadFile(out); strings.TrimSpace(string(b)) != "add backend/vbd/5/51712" {
		t.Errorf("program got %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(logDir, "xen-hotplug.log")); !strings.Contains(string(b), "stub ran") {
		t.Errorf("xen-hotplug.log = %q", b)
	}

	// Without the program, add fails through hotplug-error.
	if p, err := exec.LookPath("xenstore-write"); err == nil {
		t.Skipf("a real %s is installed; not faking it", p)
	}
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	xsOut := filepath.Join(dir, "xs")
	os.WriteFile(filepath.Join(bin, "xenstore-write"), []byte("#!/bin/sh\nprintf '%s|' \"$@\" > "+xsOut+"\n"), 0o755)
	cmd = exec.Command("sh", wrapper, "add")
	cmd.Env = append(env, "BLOCK_COWD="+filepath.Join(dir, "missing"), "PATH="+bin+":"+os.Getenv("PATH"))
	if err := cmd.Run(); err == nil {
		t.Error("wrapper without the program succeeded")
	}
	b, _ := os.ReadFile(xsOut)
	if !strings.HasPrefix(string(b), "backend/vbd/5/51712/hotplug-error|block-cowd: ") ||
		!strings.HasSuffix(string(b), "|backend/vbd/5/51712/hotplug-status|error|") {
		t.Errorf("xenstore-write got %q", b)
	}
}
