//go:build linux

// Command xendebugkeys makes Xen handle debug keys, as if typed on its
// serial console, through XEN_SYSCTL_debug_keys from dom0. Xen prints the
// result (e.g. 'm': free heap pages per zone; 'q': domain info) on its
// console, which tests read from the serial log. It is self-contained: raw
// ioctl on /dev/xen/privcmd with the argument in an mmap of
// /dev/xen/hypercall, so it does not depend on the code it helps to test.
//
//	xendebugkeys [-iface 0x15] KEYS
//
// It prints "@@DEBUGKEYS keys=KEYS rc=N@@" and exits 1 when Xen refused.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	ioctlPrivcmdHypercall = 0x00305000 // _IOC(_IOC_NONE, 'P', 0, 48)
	hypervisorSysctl      = 35         // __HYPERVISOR_sysctl
	sysctlDebugKeys       = 7          // XEN_SYSCTL_debug_keys
	keysOffset            = 512        // keys live after the 136-byte xen_sysctl
)

func main() {
	iface := flag.Uint("iface", 0x15, "XEN_SYSCTL_INTERFACE_VERSION (0x15 = Xen 4.17)")
	flag.Parse()
	if flag.NArg() != 1 || flag.Arg(0) == "" {
		fmt.Fprintln(os.Stderr, "usage: xendebugkeys [-iface N] KEYS")
		os.Exit(2)
	}
	keys := flag.Arg(0)
	rc, err := debugKeys(keys, uint32(*iface))
	fmt.Printf("@@DEBUGKEYS keys=%s rc=%d@@\n", keys, rc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "xendebugkeys:", err)
		os.Exit(1)
	}
}

// debugKeys returns the ioctl result: 0, or -errno as Xen returned it.
func debugKeys(keys string, iface uint32) (int, error) {
	pfd, err := unix.Open("/dev/xen/privcmd", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	hfd, err := unix.Open("/dev/xen/hypercall", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(hfd)
	// Kernel-pinned pages: Xen copies from them without faulting.
	buf, err := unix.Mmap(hfd, 0, unix.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return -1, fmt.Errorf("mmap /dev/xen/hypercall: %w", err)
	}
	defer unix.Munmap(buf)
	if len(keys) > len(buf)-keysOffset {
		return -1, fmt.Errorf("too many keys")
	}
	copy(buf[keysOffset:], keys)
	le := binary.LittleEndian
	le.PutUint32(buf[0:], sysctlDebugKeys)                                   // cmd
	le.PutUint32(buf[4:], iface)                                             // interface_version
	le.PutUint64(buf[8:], uint64(uintptr(unsafe.Pointer(&buf[keysOffset])))) // u.debug_keys.keys
	le.PutUint32(buf[16:], uint32(len(keys)))                                // u.debug_keys.nr_keys
	call := struct {
		op  uint64
		arg [5]uint64
	}{op: hypervisorSysctl}
	call.arg[0] = uint64(uintptr(unsafe.Pointer(&buf[0])))
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(pfd), ioctlPrivcmdHypercall, uintptr(unsafe.Pointer(&call)))
	if errno != 0 {
		return -int(errno), fmt.Errorf("sysctl debug_keys: %w", errno)
	}
	return 0, nil
}
