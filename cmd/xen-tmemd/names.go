package main

import (
	"sync"
	"time"
)

// names merges the sources of domain names and per-domain settings: libvirt
// (when connected) first, then the simulator's guest table. Xen's own list
// stays the ground truth of which domains exist; a domain nobody names is
// "dom<ID>". It is safe for concurrent use.
type names struct {
	sim func() map[uint16]simGuestInfo // nil outside simulated mode
	lv  *libvirtSource                 // nil when libvirt is off

	mu    sync.Mutex // guards cache, built
	cache map[uint16]string
	built time.Time
}

// simGuestInfo is what the simulator layer knows about one guest.
type simGuestInfo struct {
	Name     string
	Settings domainSettings
}

func newNames(sim func() map[uint16]simGuestInfo) *names { return &names{sim: sim} }

func (n *names) names() map[uint16]string {
	out := map[uint16]string{}
	if n.sim != nil {
		for id, g := range n.sim() {
			out[id] = g.Name
		}
	}
	if n.lv != nil {
		for id, m := range n.lv.Domains() {
			if m.Name != "" {
				out[id] = m.Name
			}
		}
	}
	return out
}

func (n *names) settings(id uint16) domainSettings {
	if n.lv != nil {
		if m, ok := n.lv.Domain(id); ok {
			s := m.Settings
			if s.Weight != nil || s.Compress != nil || s.Priority != nil || s.ReserveMiB != nil {
				return domainSettings{Weight: s.Weight, Compress: s.Compress, Priority: s.Priority, ReserveMiB: s.ReserveMiB}
			}
		}
	}
	if n.sim != nil {
		if g, ok := n.sim()[id]; ok {
			return g.Settings
		}
	}
	return domainSettings{}
}

// state describes the libvirt connection for "status".
func (n *names) state() string {
	if n.lv == nil {
		return "off"
	}
	return n.lv.State().String()
}

// libvirtWanted decides whether to connect to libvirt: by default on Xen
// (xen:///system), and in simulated mode only when a URI is configured.
func libvirtWanted(cfg Config, mode string) (libvirtConfig, bool) {
	lc := cfg.Libvirt
	if lc.Disable {
		return libvirtConfig{}, false
	}
	uri := lc.URI
	if uri == "" {
		if mode != "xen" {
			return libvirtConfig{}, false
		}
		uri = "xen:///system"
	}
	return libvirtConfig{URI: uri, Socket: lc.Socket, CallTimeout: lc.Timeout.Duration}, true
}
