package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/xentmem/xentmem/internal/control"
)

// defaultConfigFile is xen-tmemd's configuration, which the hook reads for
// the control socket, the reservation timeout and the metadata namespace.
const defaultConfigFile = "/etc/xen-tmemd.toml"

// hookConfig is what the hook takes from xen-tmemd's configuration.
type hookConfig struct {
	Socket         string        // [daemon] socket
	Namespace      string        // [libvirt] namespace, if the daemon has one
	ReserveTimeout time.Duration // [policy] reserve_timeout
	CallTimeout    time.Duration // any other call to the daemon (attach, detach, set)
	SettleTimeout  time.Duration // started: how long to retry while the daemon has not seen the domain
}

func defaultHookConfig() hookConfig {
	return hookConfig{Socket: control.DefaultSocket, Namespace: defaultNamespace,
		ReserveTimeout: 30 * time.Second, CallTimeout: 60 * time.Second, SettleTimeout: 5 * time.Second}
}

// parseHookConfig reads the keys the hook uses from xen-tmemd's TOML file
// over the defaults, ignoring every other key (the daemon checks those).
func parseHookConfig(b []byte) (hookConfig, error) {
	cfg := defaultHookConfig()
	var f struct {
		Daemon struct {
			Socket string `toml:"socket"`
		} `toml:"daemon"`
		Policy struct {
			ReserveTimeout string `toml:"reserve_timeout"`
		} `toml:"policy"`
		Libvirt struct {
			Namespace string `toml:"namespace"`
		} `toml:"libvirt"`
	}
	if _, err := toml.Decode(string(b), &f); err != nil {
		return cfg, err
	}
	if f.Daemon.Socket != "" {
		cfg.Socket = f.Daemon.Socket
	}
	if f.Libvirt.Namespace != "" {
		cfg.Namespace = f.Libvirt.Namespace
	}
	if f.Policy.ReserveTimeout != "" {
		d, err := time.ParseDuration(f.Policy.ReserveTimeout)
		if err != nil || d <= 0 {
			return defaultHookConfig(), fmt.Errorf("policy.reserve_timeout %q: want a positive duration", f.Policy.ReserveTimeout)
		}
		cfg.ReserveTimeout = d
	}
	return cfg, nil
}

// loadHookConfig reads path; a missing file means the defaults.
func loadHookConfig(path string) (hookConfig, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return defaultHookConfig(), nil
	}
	if err != nil {
		return defaultHookConfig(), err
	}
	cfg, err := parseHookConfig(b)
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}
