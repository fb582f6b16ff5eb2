//go:build !linux

package hypercall

import (
	"fmt"
	"runtime"
)

// Config selects the devices a [Conn] opens (Linux only).
type Config struct {
	PrivcmdPath   string
	HypercallPath string
}

// Conn is the privcmd device; it exists only on Linux.
type Conn struct{}

var _ Caller = (*Conn)(nil)

func errOS() error {
	return fmt.Errorf("hypercall: privcmd on %s: %w (Xen dom0 tools need Linux)", runtime.GOOS, ErrNotSupported)
}

// Open fails on this operating system.
func Open(*Config) (*Conn, error) { return nil, errOS() }

// Hypercall fails on this operating system.
func (*Conn) Hypercall(Op, Args) (uint64, error) { return 0, errOS() }

// Alloc fails on this operating system.
func (*Conn) Alloc(int) (*Buffer, error) { return nil, errOS() }

// Close does nothing.
func (*Conn) Close() error { return nil }

// String describes the stub.
func (*Conn) String() string { return "privcmd(unsupported on " + runtime.GOOS + ")" }
