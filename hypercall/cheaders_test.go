package hypercall

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestLayoutsAgainstCHeaders compiles testdata/layout.c with gcc against
// Debian's libxen-dev headers (Xen 4.17) and compares every size and offset
// it prints with the Go structs. Under CI=true missing gcc or headers fail.
func TestLayoutsAgainstCHeaders(t *testing.T) {
	need := func(what, hint string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing (%s)", what, hint)
		}
		t.Skipf("%s is missing (%s)", what, hint)
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		need("gcc", "apt-get install gcc")
	}
	if _, err := os.Stat("/usr/include/xen/sysctl.h"); err != nil {
		need("Xen headers", "apt-get install libxen-dev")
	}
	bin := filepath.Join(t.TempDir(), "layout")
	if out, err := exec.Command("gcc", "-Wall", "-o", bin, "testdata/layout.c").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("run layout: %v", err)
	}
	byName := map[string]reflect.Type{}
	for _, l := range layouts {
		byName[l.name] = reflect.TypeOf(l.v)
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			t.Fatalf("bad line %q", sc.Text())
		}
		typ, ok := byName[f[0]]
		if !ok {
			t.Fatalf("C layout %q has no Go counterpart", f[0])
		}
		want, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		var got uintptr
		if f[1] == "SIZE" {
			got = typ.Size()
		} else if got, ok = fieldOffset(typ, f[1]); !ok {
			t.Fatalf("%s has no field %s", typ, f[1])
		}
		if got != uintptr(want) {
			t.Errorf("%s %s: Go %d, C %d", f[0], f[1], got, want)
		}
		n++
	}
	if n < 50 {
		t.Fatalf("only %d values compared", n)
	}
	t.Logf("%d sizes and offsets match the libxen-dev headers", n)
}
