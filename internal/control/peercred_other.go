//go:build !linux

package control

import (
	"fmt"
	"net"
	"runtime"
)

// RootOnly refuses every connection where peer credentials are not
// implemented.
func RootOnly(int) func(net.Conn) error {
	return func(net.Conn) error {
		return fmt.Errorf("peer credential check not implemented on %s", runtime.GOOS)
	}
}
