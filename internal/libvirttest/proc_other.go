//go:build !linux

package libvirttest

import "syscall"

// sysProcAttr has no parent-death signal outside Linux: the cleanup
// registered by Start is the only thing that stops the daemon.
func sysProcAttr() *syscall.SysProcAttr { return nil }
