package cowdtest

import (
	"os"
	"os/exec"
	"testing"
)

// Packages lists the Debian packages that provide the tools the cowd
// interop tests run.
var Packages = map[string]string{
	"qemu-img": "qemu-utils",
	"qemu-io":  "qemu-utils",
	"nbdinfo":  "libnbd-bin",
	"nbdcopy":  "libnbd-bin",
	"fio":      "fio",
}

// RequireTool returns the path of an external tool. When it is missing
// the test is skipped with the apt-get command that installs it, except
// under CI=true, where a missing component is a failure.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	pkg := Packages[name]
	if pkg == "" {
		pkg = name
	}
	msg := name + " not found; install it with: apt-get install -y --no-install-recommends " + pkg
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// RequireFioNBD checks that fio has its nbd engine (built on libnbd).
func RequireFioNBD(t testing.TB) string {
	t.Helper()
	fio := RequireTool(t, "fio")
	out, err := exec.Command(fio, "--enghelp=nbd").CombinedOutput()
	if err != nil {
		msg := "fio lacks the nbd engine: " + string(out)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return fio
}
