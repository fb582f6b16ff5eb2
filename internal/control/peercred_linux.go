//go:build linux

package control

import (
	"fmt"
	"net"
	"syscall"
)

// RootOnly allows a connection only from a process running as uid 0 (or
// as the daemon's own uid), checked with SO_PEERCRED.
func RootOnly(self int) func(net.Conn) error {
	return func(c net.Conn) error {
		uc, ok := c.(*net.UnixConn)
		if !ok {
			return fmt.Errorf("not a unix socket")
		}
		raw, err := uc.SyscallConn()
		if err != nil {
			return err
		}
		var cred *syscall.Ucred
		var cerr error
		if err := raw.Control(func(fd uintptr) {
			cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
		}); err != nil {
			return err
		}
		if cerr != nil {
			return fmt.Errorf("peer credentials: %w", cerr)
		}
		if cred.Uid != 0 && int(cred.Uid) != self {
			return fmt.Errorf("peer uid %d (pid %d) is not root", cred.Uid, cred.Pid)
		}
		return nil
	}
}
