package xentest

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BuildGuest compiles the package pkg (relative to the repository root, e.g.
// "./cmd/tmemctl") into a static linux/amd64 binary at out for dom0. With
// test set it compiles the package's tests (go test -c) instead. An error
// carries go's output; a package without tests is an error too.
func BuildGuest(out, pkg string, test bool) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	args := []string{"build", "-o", out, pkg}
	if test {
		args = []string{"test", "-c", "-o", out, pkg}
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	// The guest is x86_64 whatever the host; -race and cgo don't apply.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=")
	b, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("CGO_ENABLED=0 go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	if _, err := os.Stat(out); err != nil {
		return fmt.Errorf("go %s wrote no binary (no test files?): %s", strings.Join(args, " "), b)
	}
	return checkStatic(out)
}

// checkStatic fails for a dynamically linked ELF: the initramfs has no libc.
func checkStatic(p string) error {
	f, err := elf.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked", filepath.Base(p))
		}
	}
	return nil
}
