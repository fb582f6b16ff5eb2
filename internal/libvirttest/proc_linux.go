//go:build linux

package libvirttest

import "syscall"

// sysProcAttr makes the kernel kill the daemon if the test binary dies
// (for example on a test timeout), so no libvirtd is left behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
