// Package xentest boots Debian's real Xen 4.17 with a Debian 6.1 PV dom0
// under QEMU (software emulation, no KVM) so that tests can run the
// project's own binaries inside dom0 and check the results from the host.
//
// [Prepare] installs the host tools when root and fetches Xen and the dom0
// kernel into a cache (xen-qemu.sh prepare; $XENTMEM_CACHE or
// <repo>/.cache/xen), [BuildGuest] compiles static binaries and test
// binaries for the guest, and [Boot] builds an initramfs from host files and
// an init script, boots it (at most 300 s) and returns the serial log:
//
//	m := xentest.Prepare(t) // skips under -short
//	bin := filepath.Join(t.TempDir(), "cowd")
//	if err := xentest.BuildGuest(bin, "./cmd/cowd", false); err != nil {
//		t.Fatal(err)
//	}
//	log, err := xentest.Boot(ctx, t, xentest.BootConfig{
//		Files:      map[string]string{"/xt/cowd": bin},
//		Modules:    []string{m.PrivcmdKO, m.NBDKO},
//		InitScript: `echo @@COWD-BEGIN@@; /xt/cowd ...; echo "@@COWD-END exit=$?@@"`,
//	})
//	body, end, ok := xentest.Section(log, "@@COWD-BEGIN@@", "@@COWD-END")
//
// Programs in the guest report through sentinel lines on the console
// ("@@NAME ...@@"): QEMU's exit status says nothing about the guest. Xen's
// own console (com1) and dom0's (hvc0, forwarded by Xen) share the log;
// [Section] drops Xen's "(XEN)" lines and kernel messages. Under CI=true a
// missing component fails the test ([Unavailable]); otherwise the test is
// skipped with the command that fixes it.
//
// The recipe and its pitfalls (SMAP, multiboot modules, /dev/console,
// insmod) are those of the shared reference real-xen.md §1.
package xentest
