//go:build linux

package xentest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// guestTests are the packages whose compiled tests run inside dom0.
var guestTests = []string{"hypercall", "xenctl"}

// The dom0 side: debug keys 'm' (free heap) and 'q' (domain pages) make
// Xen print the values tmemctl must report, right before and right after
// it runs; then the compiled tests run from their package directory.
const dom0Script = `
v=/sys/hypervisor/version
echo "@@SYSFS-VERSION $(cat $v/major).$(cat $v/minor)$(cat $v/extra)@@"
/xt/xendebugkeys mq
if [ -x /xt/tmemctl ]; then
	echo @@XENINFO-BEGIN@@
	/xt/tmemctl xen-info -o json 2>/tmp/xen-info.err
	echo "@@XENINFO-END exit=$?@@"
	sed 's/^/tmemctl stderr: /' /tmp/xen-info.err
fi
/xt/xendebugkeys mq
for t in $GUEST_TESTS; do
	[ -x /xt/$t.test ] || continue
	mkdir -p /pkg/$t
	echo "@@TEST-BEGIN $t@@"
	(cd /pkg/$t && /xt/$t.test -test.v -test.timeout=100s 2>&1)
	echo "@@TEST $t exit=$?@@"
done
if [ -x /xt/hypercall.test ]; then
	# The hypercall path on real Xen: ns/op and allocations per call.
	(cd /pkg/hypercall && /xt/hypercall.test -test.run '^$' -test.bench 'Hypercall' -test.benchmem -test.benchtime 20000x 2>&1 | grep Benchmark | sed 's/^/@@BENCH /')
fi
`

func TestIntegrationXen417(t *testing.T) {
	start := time.Now()
	m := Prepare(t)
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{}
	buildErr := map[string]error{}
	build := func(name, pkg string, test bool) {
		out := filepath.Join(dir, name)
		if err := BuildGuest(out, pkg, test); err != nil {
			buildErr[name] = err
			return
		}
		files["/xt/"+name] = out
	}
	build("xendebugkeys", "./internal/xentest/cmd/xendebugkeys", false)
	if err := buildErr["xendebugkeys"]; err != nil {
		t.Fatal(err)
	}
	build("tmemctl", "./cmd/tmemctl", false)
	for _, p := range guestTests {
		build(p+".test", "./"+p, true)
		if fi, err := os.Stat(filepath.Join(root, p, "testdata")); err == nil && fi.IsDir() {
			files["/pkg/"+p+"/testdata"] = filepath.Join(root, p, "testdata")
		}
	}
	t.Logf("prepare and build: %.1fs (Xen %s, kernel %s)", time.Since(start).Seconds(), m.XenVersion, m.KVer)

	log, err := Boot(context.Background(), t, BootConfig{
		Files:   files,
		Modules: []string{m.PrivcmdKO},
		Env: map[string]string{
			"XENTMEM_IN_DOM0": "1",
			"GUEST_TESTS":     strings.Join(guestTests, " "),
		},
		InitScript: dom0Script,
	})
	if err != nil {
		// Check what did run: the subtests say which parts finished.
		t.Error(err)
	}
	report := func(t *testing.T, p problems) {
		for _, s := range p {
			t.Error(s)
		}
	}
	t.Run("console", func(t *testing.T) { report(t, checkConsole(log, ParseXenConsole(log))) })
	t.Run("bench", func(t *testing.T) {
		n := 0
		for _, l := range strings.Split(log, "\n") {
			if i := strings.Index(l, "@@BENCH "); i >= 0 {
				t.Log(strings.TrimSpace(l[i+8:]))
				n++
				if !strings.Contains(l, " 0 allocs/op") {
					t.Errorf("the hypercall path allocates on real Xen: %s", l[i+8:])
				}
			}
		}
		if n == 0 && buildErr["hypercall.test"] == nil {
			t.Error("no benchmark line from dom0")
		}
	})
	t.Run("xen-info", func(t *testing.T) {
		if err := buildErr["tmemctl"]; err != nil {
			t.Fatal(err)
		}
		out, p := checkXenInfo(log)
		t.Logf("tmemctl xen-info -o json in dom0:\n%s", out)
		report(t, p)
	})
	for _, pkg := range guestTests {
		t.Run(pkg+".test", func(t *testing.T) {
			if err := buildErr[pkg+".test"]; err != nil {
				t.Fatal(err)
			}
			skips, p := checkGuestTest(log, pkg)
			if len(skips) > 0 {
				t.Logf("skipped in dom0: %s", strings.Join(skips, ", "))
			}
			report(t, p)
		})
	}
	t.Logf("total: %.1fs", time.Since(start).Seconds())
}
