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

// cowdNBDScript runs in dom0: cowd attaches a dscow overlay to /dev/nbd0
// through the kernel's nbd driver; dd writes a pattern at several offsets
// through the device with O_DIRECT and reads it back, then the whole disk
// is read through the device and through cowd's unix socket, and both must
// equal the base with the patterns applied; cowd stops on SIGTERM
// (detaching the device before it flushes) and the image must check
// clean, the base be unchanged and a second cowd serve what was written.
// Reads through the emulated PV dom0 run at a few MB/s, so the disk is
// small (16 MiB) and read whole only three times. Then the cowd/nbd
// kernel tests run against /dev/nbd1. Every fact goes out as
// "@@COWD-NBD STEP key=value ...@@"; the host compares.
const cowdNBDScript = `
say() { echo "@@COWD-NBD $*@@"; }
sum() { md5sum | cut -d' ' -f1; }
up() { cut -d' ' -f1 /proc/uptime; }
# $OFFS: where 192 KiB patterns go, in 4 KiB blocks (see cowdNBDOffsets).
echo @@COWD-NBD-BEGIN@@
insmod /xt/nbd.ko nbds_max=2 max_part=0; say "insmod exit=$?"
say "devices nbd0=$([ -b /dev/nbd0 ] && echo yes || echo no) nbd1=$([ -b /dev/nbd1 ] && echo yes || echo no)"
mkdir -p /img /run/cowd
dd if=/dev/urandom of=/img/base.raw bs=1M count=16 2>/dev/null
say "base sum=$(sum </img/base.raw) uptime=$(up)"
/xt/cowd-img create /img/vm.dscow /img/base.raw 64 >/dev/null; say "create exit=$?"
/xt/cowd -n -v --nbd-device /dev/nbd0 --listen unix:/run/cowd/vm.sock --log /tmp/cowd.log vm /img/vm.dscow &
pid=$!
i=0
while [ ! -e /sys/block/nbd0/pid ] && [ $i -lt 300 ] && kill -0 $pid 2>/dev/null; do sleep 0.1; i=$((i+1)); done
say "attached pid=$([ -e /sys/block/nbd0/pid ] && echo yes || echo no) sectors=$(cat /sys/block/nbd0/size) waited=$i uptime=$(up)"
dd if=/dev/urandom of=/tmp/pat bs=64K count=3 2>/dev/null
say "pattern sum=$(sum </tmp/pat)"
cp /img/base.raw /tmp/expect.raw
for off in $OFFS; do
	dd if=/tmp/pat of=/dev/nbd0 bs=4096 seek=$off oflag=direct conv=notrunc 2>/dev/null; say "write off=$off exit=$?"
	dd if=/tmp/pat of=/tmp/expect.raw bs=4096 seek=$off conv=notrunc 2>/dev/null
done
sync
say "written uptime=$(up)"
for off in $OFFS; do
	say "region off=$off device=$(dd if=/dev/nbd0 bs=4096 skip=$off count=48 iflag=direct 2>/dev/null | sum)"
done
say "disk device=$(dd if=/dev/nbd0 bs=1M iflag=direct 2>/dev/null | sum) uptime=$(up)"
say "disk-socket sum=$(/xt/nbdread -socket /run/cowd/vm.sock -export vm | sum) uptime=$(up)"
say "expect sum=$(sum </tmp/expect.raw)"
kill -TERM $pid; wait $pid; say "stop exit=$? uptime=$(up)"
say "detached pid=$([ -e /sys/block/nbd0/pid ] && echo yes || echo no) sectors=$(cat /sys/block/nbd0/size)"
sed 's/^/cowd log: /' /tmp/cowd.log
/xt/cowd-img check /img/vm.dscow; say "check exit=$?"
say "base-after sum=$(sum </img/base.raw)"
/xt/cowd -n --listen unix:/run/cowd/vm2.sock vm /img/vm.dscow &
pid=$!
i=0
while [ ! -S /run/cowd/vm2.sock ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
say "reopened socket=$(/xt/nbdread -socket /run/cowd/vm2.sock | sum)"
kill -TERM $pid; wait $pid; say "stop2 exit=$? uptime=$(up)"
echo @@COWD-NBD-END@@
echo @@NBDTEST-BEGIN@@
mkdir -p /pkg/nbd
(cd /pkg/nbd && COWD_TEST_NBD_DEVICE=/dev/nbd1 /xt/nbd.test -test.run '^TestIntegrationKernelAttach$' -test.v -test.timeout=150s 2>&1)
echo "@@NBDTEST-END exit=$?@@"
`

// cowdNBDOffsets are where the guest writes its 192 KiB pattern, in 4 KiB
// blocks: at the start, straddling 64 KiB cowd blocks (400 KiB), mid-disk,
// and the last 192 KiB of the 16 MiB disk. They must not overlap.
var cowdNBDOffsets = []string{"0", "100", "2056", "4048"}

// cowdNBDFacts parses the "@@COWD-NBD STEP k=v ...@@" lines: step, key,
// value. A repeated step (region) gets its offset in the name ("region 37").
func cowdNBDFacts(body []string) map[string]map[string]string {
	facts := map[string]map[string]string{}
	for _, l := range body {
		rest, ok := strings.CutPrefix(l, "@@COWD-NBD ")
		if !ok {
			continue
		}
		f := strings.Fields(strings.TrimSuffix(rest, "@@"))
		if len(f) == 0 {
			continue
		}
		kv := map[string]string{}
		for _, p := range f[1:] {
			if k, v, ok := strings.Cut(p, "="); ok {
				kv[k] = v
			}
		}
		name := f[0]
		if off := kv["off"]; off != "" {
			name += " " + off
		}
		facts[name] = kv
	}
	return facts
}

// checkCowdNBD checks the facts of cowdNBDScript.
func checkCowdNBD(body []string) (p problems) {
	facts := cowdNBDFacts(body)
	get := func(step, key string) string { return facts[step][key] }
	want := func(step, key, value string) {
		if got := get(step, key); got != value {
			p.add("%s %s = %q, want %q", step, key, got, value)
		}
	}
	want("insmod", "exit", "0")
	want("devices", "nbd0", "yes")
	want("devices", "nbd1", "yes")
	want("create", "exit", "0")
	want("attached", "pid", "yes")
	want("attached", "sectors", "32768") // 16 MiB
	pattern := get("pattern", "sum")
	for _, off := range cowdNBDOffsets {
		want("write "+off, "exit", "0")
		want("region "+off, "device", pattern)
	}
	expect := get("expect", "sum")
	if expect == "" || expect == get("base", "sum") {
		p.add("expected disk sum %q is empty or equals the base's", expect)
	}
	want("disk", "device", expect)
	want("disk-socket", "sum", expect)
	want("stop", "exit", "0")
	want("detached", "pid", "no")
	want("detached", "sectors", "0")
	want("check", "exit", "0")
	want("base-after", "sum", get("base", "sum"))
	want("reopened", "socket", expect)
	want("stop2", "exit", "0")
	if pattern == "" || get("base", "sum") == "" {
		p.add("no pattern or base checksum: %v", facts)
	}
	// cowd -v logs how it attached and that it detached before closing.
	log := strings.Join(body, "\n")
	for _, s := range []string{`"method": "netlink"`, "detached from the kernel nbd driver", "image closed cleanly"} {
		if !strings.Contains(log, s) {
			p.add("cowd log lacks %q", s)
		}
	}
	if a, b := strings.Index(log, "detached from the kernel"), strings.Index(log, "image closed cleanly"); a > b {
		p.add("cowd closed the image before detaching the device")
	}
	return p
}

func TestIntegrationCowdNBD(t *testing.T) {
	start := time.Now()
	m := Prepare(t)
	if m.NBDKO == "" {
		Unavailable(t, "the manifest of %s names no nbd.ko; rerun xen-qemu.sh prepare", m.Dir)
	}
	if _, err := os.Stat(m.NBDKO); err != nil {
		Unavailable(t, "nbd.ko: %v", err)
	}
	dir := t.TempDir()
	files := map[string]string{"/xt/nbd.ko": m.NBDKO}
	for name, pkg := range map[string]string{
		"cowd": "./cmd/cowd", "cowd-img": "./cmd/cowd-img", "nbdread": "./internal/cowdtest/cmd/nbdread",
	} {
		out := filepath.Join(dir, name)
		if err := BuildGuest(out, pkg, false); err != nil {
			t.Fatal(err)
		}
		files["/xt/"+name] = out
	}
	out := filepath.Join(dir, "nbd.test")
	if err := BuildGuest(out, "./cowd/nbd", true); err != nil {
		t.Fatal(err)
	}
	files["/xt/nbd.test"] = out
	t.Logf("prepare and build: %.1fs (kernel %s)", time.Since(start).Seconds(), m.KVer)

	log, err := Boot(context.Background(), t, BootConfig{
		Files:      files,
		Env:        map[string]string{"OFFS": strings.Join(cowdNBDOffsets, " ")},
		InitScript: cowdNBDScript,
	})
	if err != nil {
		t.Error(err) // the subtests say which parts ran
	}
	t.Run("cowd", func(t *testing.T) {
		body, _, ok := Section(log, "@@COWD-NBD-BEGIN@@", "@@COWD-NBD-END")
		if !ok {
			t.Fatalf("no @@COWD-NBD section; tail of the serial log:\n%s", Tail(log, 40))
		}
		for _, l := range body {
			if strings.HasPrefix(l, "@@COWD-NBD ") {
				t.Log(l)
			}
		}
		for _, s := range checkCowdNBD(body) {
			t.Error(s)
		}
		if t.Failed() {
			t.Logf("dom0 output:\n%s", strings.Join(body, "\n"))
		}
	})
	t.Run("nbd.test", func(t *testing.T) {
		body, end, ok := Section(log, "@@NBDTEST-BEGIN@@", "@@NBDTEST-END")
		if !ok {
			t.Fatalf("no @@NBDTEST section; tail of the serial log:\n%s", Tail(log, 40))
		}
		n, _ := SentinelInt(end, "exit")
		passed := 0
		for _, l := range body {
			if strings.HasPrefix(strings.TrimSpace(l), "--- ") {
				t.Log(strings.TrimSpace(l))
			}
			if strings.HasPrefix(strings.TrimSpace(l), "--- PASS: TestIntegrationKernelAttach/") {
				passed++
			}
		}
		if n != 0 || passed != 5 {
			t.Errorf("cowd/nbd kernel tests in dom0: exit %d, %d of 5 subtests passed:\n%s", n, passed, strings.Join(body, "\n"))
		}
	})
	t.Logf("total: %.1fs", time.Since(start).Seconds())
}

// TestCheckCowdNBD shows that checkCowdNBD accepts a good run and catches
// a device that reads differently from the socket.
func TestCheckCowdNBD(t *testing.T) {
	good := []string{
		"@@COWD-NBD insmod exit=0@@", "@@COWD-NBD devices nbd0=yes nbd1=yes@@",
		"@@COWD-NBD base sum=B uptime=3.1@@", "@@COWD-NBD create exit=0@@",
		"@@COWD-NBD attached pid=yes sectors=32768 waited=2 uptime=4@@", "@@COWD-NBD pattern sum=P@@",
	}
	for _, off := range cowdNBDOffsets {
		good = append(good, "@@COWD-NBD write off="+off+" exit=0@@",
			"@@COWD-NBD region off="+off+" device=P@@")
	}
	good = append(good,
		"@@COWD-NBD disk device=E uptime=9@@", "@@COWD-NBD disk-socket sum=E uptime=9@@",
		"@@COWD-NBD expect sum=E@@",
		`cowd log: ... INFO cowd attached to the kernel nbd driver {"method": "netlink", "connections": 1}`,
		"cowd log: ... INFO cowd detached from the kernel nbd driver",
		"cowd log: ... INFO cowd metadata durable, image closed cleanly",
		"@@COWD-NBD stop exit=0 uptime=10@@", "@@COWD-NBD detached pid=no sectors=0@@",
		"@@COWD-NBD check exit=0@@", "@@COWD-NBD base-after sum=B@@",
		"@@COWD-NBD reopened socket=E@@", "@@COWD-NBD stop2 exit=0 uptime=12@@")
	if p := checkCowdNBD(good); len(p) != 0 {
		t.Errorf("good run: %q", p)
	}
	bad := append([]string(nil), good...)
	for i, l := range bad {
		if strings.HasPrefix(l, "@@COWD-NBD region off=100 ") {
			bad[i] = "@@COWD-NBD region off=100 device=X@@"
		}
	}
	if p := checkCowdNBD(bad); len(p) != 1 || !strings.Contains(p[0], "region 100 device") {
		t.Errorf("mismatched region: %q", p)
	}
	if p := checkCowdNBD(good[:4]); len(p) < 10 {
		t.Errorf("truncated run: only %d problems", len(p))
	}
}
