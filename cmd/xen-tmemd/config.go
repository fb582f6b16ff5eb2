package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/xentmem/xentmem/pools"
)

// Config is the daemon's configuration: the TOML file (docs/xen-tmemd.toml
// is the documented example) with command-line flags applied on top.
type Config struct {
	Daemon     DaemonConfig     `toml:"daemon"`
	Hypervisor HypervisorConfig `toml:"hypervisor"`
	Sim        SimConfig        `toml:"sim"`
	Policy     PolicyConfig     `toml:"policy"`
	Libvirt    LibvirtConfig    `toml:"libvirt"`
	Metrics    MetricsConfig    `toml:"metrics"`
	Cowd       CowdConfig       `toml:"cowd"`
}

// DaemonConfig is the [daemon] table.
type DaemonConfig struct {
	Interval  duration `toml:"interval"`   // monitoring tick, default 1s
	Socket    string   `toml:"socket"`     // control socket
	PidFile   string   `toml:"pid_file"`   // empty: none
	DryRun    bool     `toml:"dry_run"`    // log actions, do not execute them
	LogFormat string   `toml:"log_format"` // console or json
	LogLevel  string   `toml:"log_level"`  // debug, info, warn, error
}

// HypervisorConfig is the [hypervisor] table.
type HypervisorConfig struct {
	Mode    string `toml:"mode"`    // auto, xen or sim
	Privcmd string `toml:"privcmd"` // privcmd device path
}

// SimConfig is the [sim] table: the embedded simulated hypervisor.
type SimConfig struct {
	Version   string     `toml:"version"`    // Xen release to emulate, default 4.12.4
	MemoryMiB uint64     `toml:"memory_mib"` // host memory, default 4096
	Dom0MiB   uint64     `toml:"dom0_mib"`   // dom0 memory, default 512
	Compress  bool       `toml:"tmem_compress"`
	Seed      uint64     `toml:"seed"`  // workload seed, default 1
	Speed     float64    `toml:"speed"` // workload rate multiplier, default 1
	Guests    []SimGuest `toml:"guest"`
}

// SimGuest is one [[sim.guest]]: a simulated domain and its workload.
type SimGuest struct {
	Name       string   `toml:"name"`
	MemoryMiB  uint64   `toml:"memory_mib"`
	Workload   string   `toml:"workload"`    // zipf, uniform, scan, frontswap or idle
	WorkingMiB uint64   `toml:"working_mib"` // data the workload touches
	CacheMiB   uint64   `toml:"cache_mib"`   // the guest's page cache
	Skew       float64  `toml:"skew"`        // zipf skew
	Rate       float64  `toml:"rate"`        // page accesses per second
	Weight     uint32   `toml:"weight"`
	Priority   int      `toml:"priority"`
	StartAfter duration `toml:"start_after"` // start the domain this long after boot
	StopAfter  duration `toml:"stop_after"`  // destroy it this long after boot
}

// PolicyConfig is the [policy] table.
type PolicyConfig struct {
	CriticalPercent float64  `toml:"critical_percent"`
	LowPercent      float64  `toml:"low_percent"`
	HighPercent     float64  `toml:"high_percent"`
	CriticalMiB     uint64   `toml:"critical_mib"`
	LowMiB          uint64   `toml:"low_mib"`
	HighMiB         uint64   `toml:"high_mib"`
	Weights         bool     `toml:"weights"`     // re-weight by hit yield (default true)
	WeightMode      string   `toml:"weight_mode"` // xen or proportional
	WeightMin       uint32   `toml:"weight_min"`
	WeightMax       uint32   `toml:"weight_max"`
	Freeze          bool     `toml:"freeze"` // freeze below critical (default true)
	FreezeMaxPrio   int      `toml:"freeze_max_priority"`
	Compress        bool     `toml:"compress"` // compression under pressure (default true)
	ReserveTimeout  duration `toml:"reserve_timeout"`
}

// LibvirtConfig is the [libvirt] table.
type LibvirtConfig struct {
	URI     string   `toml:"uri"`    // default xen:///system on Xen, off in sim mode
	Socket  string   `toml:"socket"` // libvirtd socket
	Timeout duration `toml:"timeout"`
	Disable bool     `toml:"disable"`
}

// MetricsConfig is the [metrics] table.
type MetricsConfig struct {
	Listen string `toml:"listen"` // e.g. 127.0.0.1:9478; empty: off
}

// duration is a time.Duration written as "1s" in TOML.
type duration struct{ time.Duration }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("negative duration %s", b)
	}
	d.Duration = v
	return nil
}

func (d duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// defaultConfig returns the configuration used when no file is given.
func defaultConfig() Config {
	return Config{
		Daemon: DaemonConfig{Interval: duration{time.Second}, Socket: "/run/xen-tmemd/control.sock",
			LogFormat: "console", LogLevel: "info"},
		Hypervisor: HypervisorConfig{Mode: "auto"},
		Sim:        SimConfig{Version: "4.12.4", MemoryMiB: 4096, Dom0MiB: 512, Seed: 1, Speed: 1},
		Policy:     PolicyConfig{Weights: true, Freeze: true, Compress: true, ReserveTimeout: duration{30 * time.Second}},
		Libvirt:    LibvirtConfig{Socket: "/var/run/libvirt/libvirt-sock", Timeout: duration{5 * time.Second}},
		Cowd:       defaultCowdConfig(),
	}
}

// errConfig is wrapped by every configuration error.
var errConfig = errors.New("configuration")

// loadConfig reads path over the defaults. An empty path means defaults.
func loadConfig(path string) (Config, error) {
	cfg := defaultConfig()
	if path == "" {
		return cfg, cfg.validate()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("%w: %v", errConfig, err)
	}
	return parseConfig(b, cfg)
}

// parseConfig decodes TOML text over base and validates the result.
func parseConfig(b []byte, base Config) (Config, error) {
	cfg := base
	md, err := toml.Decode(string(b), &cfg)
	if err != nil {
		return base, fmt.Errorf("%w: %v", errConfig, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return base, fmt.Errorf("%w: unknown key %q (see docs/xen-tmemd.toml)", errConfig, und[0].String())
	}
	if err := cfg.validate(); err != nil {
		return base, err
	}
	return cfg, nil
}

func (c *Config) validate() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: "+f, append([]any{errConfig}, a...)...) }
	if c.Daemon.Interval.Duration < 10*time.Millisecond || c.Daemon.Interval.Duration > time.Hour {
		return bad("daemon.interval %s: want 10ms–1h", c.Daemon.Interval)
	}
	if c.Daemon.Socket == "" {
		return bad("daemon.socket is empty")
	}
	switch c.Daemon.LogFormat {
	case "console", "json":
	default:
		return bad("daemon.log_format %q: want console or json", c.Daemon.LogFormat)
	}
	switch c.Daemon.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return bad("daemon.log_level %q: want debug, info, warn or error", c.Daemon.LogLevel)
	}
	switch c.Hypervisor.Mode {
	case "auto", "xen", "sim":
	default:
		return bad("hypervisor.mode %q: want auto, xen or sim", c.Hypervisor.Mode)
	}
	if c.Sim.MemoryMiB < 256 || c.Sim.MemoryMiB > 1<<22 {
		return bad("sim.memory_mib %d: want 256–4194304", c.Sim.MemoryMiB)
	}
	if c.Sim.Dom0MiB == 0 || c.Sim.Dom0MiB >= c.Sim.MemoryMiB {
		return bad("sim.dom0_mib %d: want 1–%d", c.Sim.Dom0MiB, c.Sim.MemoryMiB-1)
	}
	if c.Sim.Speed <= 0 || c.Sim.Speed > 1000 {
		return bad("sim.speed %g: want (0, 1000]", c.Sim.Speed)
	}
	names := map[string]bool{}
	for i, g := range c.Sim.Guests {
		if g.Name == "" {
			return bad("sim.guest[%d]: name is required", i)
		}
		if names[g.Name] {
			return bad("sim.guest %q: duplicate name", g.Name)
		}
		names[g.Name] = true
		if g.MemoryMiB == 0 {
			return bad("sim.guest %q: memory_mib is required", g.Name)
		}
		switch g.Workload {
		case "zipf", "uniform", "scan", "frontswap", "idle", "":
		default:
			return bad("sim.guest %q: workload %q: want zipf, uniform, scan, frontswap or idle", g.Name, g.Workload)
		}
	}
	if _, err := c.policyConfig(); err != nil {
		return bad("policy: %v", err)
	}
	switch c.Policy.WeightMode {
	case "", "xen", "proportional":
	default:
		return bad("policy.weight_mode %q: want xen or proportional", c.Policy.WeightMode)
	}
	if !c.Cowd.Disable {
		if err := c.Cowd.validate(); err != nil {
			return err
		}
	}
	return nil
}

// policyConfig converts the [policy] table for package pools, and checks it
// the way pools.NewPolicy will.
func (c *Config) policyConfig() (*pools.PolicyConfig, error) {
	p := c.Policy
	pc := &pools.PolicyConfig{DryRun: c.Daemon.DryRun}
	pc.Watermarks = pools.Watermarks{
		Critical: pools.Level{KiB: p.CriticalMiB * 1024, Percent: p.CriticalPercent},
		Low:      pools.Level{KiB: p.LowMiB * 1024, Percent: p.LowPercent},
		High:     pools.Level{KiB: p.HighMiB * 1024, Percent: p.HighPercent},
	}
	pc.Weights.Disabled = !p.Weights
	if p.WeightMode == "proportional" {
		pc.Weights.Mode = pools.WeightProportional
	}
	pc.Weights.Min, pc.Weights.Max = p.WeightMin, p.WeightMax
	pc.Freeze.Disabled = !p.Freeze
	pc.Freeze.MaxPriority = p.FreezeMaxPrio
	pc.Compress.Disabled = !p.Compress
	if _, err := pools.NewPolicy(pc); err != nil {
		return nil, err
	}
	return pc, nil
}
