package nbd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Listen opens a listener for addr, which is "unix:PATH" (or a bare path)
// or "tcp:HOST:PORT". A unix socket gets mode 0600 and its directory is
// created with mode 0700 if missing. A stale socket file (nobody accepts
// on it) is replaced; a live one makes Listen fail.
func Listen(addr string) (net.Listener, error) {
	network, where, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	if network == "tcp" {
		l, err := net.Listen("tcp", where)
		if err != nil {
			return nil, fmt.Errorf("nbd: listen: %w", err)
		}
		return l, nil
	}
	if err := os.MkdirAll(filepath.Dir(where), 0o700); err != nil {
		return nil, fmt.Errorf("nbd: socket directory: %w", err)
	}
	if err := removeStale(where); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", where)
	if err != nil {
		return nil, fmt.Errorf("nbd: listen: %w", err)
	}
	if err := os.Chmod(where, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("nbd: socket mode: %w", err)
	}
	return l, nil
}

// ParseAddr splits a listen address into network ("unix" or "tcp") and
// address.
func ParseAddr(addr string) (network, where string, err error) {
	switch {
	case strings.HasPrefix(addr, "unix:"):
		network, where = "unix", strings.TrimPrefix(addr, "unix:")
	case strings.HasPrefix(addr, "tcp:"):
		network, where = "tcp", strings.TrimPrefix(addr, "tcp:")
	case strings.HasPrefix(addr, "/"):
		network, where = "unix", addr
	default:
		return "", "", fmt.Errorf("%w: listen address %q: want unix:PATH or tcp:HOST:PORT", ErrConfig, addr)
	}
	if where == "" {
		return "", "", fmt.Errorf("%w: listen address %q is empty", ErrConfig, addr)
	}
	if network == "tcp" {
		if _, _, err := net.SplitHostPort(where); err != nil {
			return "", "", fmt.Errorf("%w: listen address %q: %w", ErrConfig, addr, err)
		}
	}
	return network, where, nil
}

func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("nbd: socket: %w", err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%w: %s exists and is not a socket", ErrConfig, path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("nbd: %s: another server is listening there", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("nbd: probe %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("nbd: remove stale socket: %w", err)
	}
	return nil
}
