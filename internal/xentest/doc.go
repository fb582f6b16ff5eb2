// Package xentest boots Debian's real Xen 4.17 with a Debian 6.1 PV dom0
// under QEMU (software emulation) so that tests can run the project's own
// binaries inside dom0 and check the results from the host.
//
// [Prepare] installs the host tools and fetches Xen and the dom0 kernel into
// a cache (xen-qemu.sh prepare), [Boot] builds an initramfs from host files
// and an init script and boots it, returning the serial log, and
// [BuildGuest] compiles static binaries and test binaries for the guest.
//
// Programs in the guest report through sentinel lines on the console
// ("@@NAME ...@@"); QEMU's exit status says nothing about the guest. Under
// CI=true a missing component fails the test; otherwise the test is skipped
// with the command that fixes it. Tests using this package skip under -short.
//
// Facts behind the recipe: /work/shared/reference/real-xen.md §1.
package xentest
