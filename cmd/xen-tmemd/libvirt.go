package main

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/digitalocean/go-libvirt/socket"
	"go.uber.org/zap"
)

// libvirtConfig configures a [libvirtSource]. Zero fields take defaults.
type libvirtConfig struct {
	// URI is the libvirt connection URI: xen:///system on Xen (the
	// default), test:///default for the test driver.
	URI string
	// Socket is libvirtd's read-write socket, default
	// /run/libvirt/libvirt-sock.
	Socket string
	// CallTimeout bounds every libvirt call, connecting included; default 5s.
	// A call that takes longer marks the connection broken.
	CallTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the exponential backoff between
	// connection attempts; defaults 500ms and 30s.
	ReconnectMin, ReconnectMax time.Duration
	// Namespace is the XML namespace of the tmem settings in domain
	// metadata, default "https://xentmem.dev/xmlns/tmem/1".
	Namespace string
	// KeepAlive is how long the connection may stay quiet before a health
	// check call (ConnectGetLibVersion); it is what detects a hung daemon
	// while no events arrive. Default CallTimeout/2.
	KeepAlive time.Duration
	// EventBuffer is the capacity of the Events channel, default 256.
	EventBuffer int
	// Dialer replaces the unix socket dialer; tests pass go-libvirt's
	// libvirttest mock. Nil dials Socket.
	Dialer socket.Dialer
}

// Defaults of libvirtConfig.
const (
	defaultLibvirtURI         = "xen:///system"
	defaultLibvirtSocket      = "/run/libvirt/libvirt-sock"
	defaultLibvirtCallTimeout = 5 * time.Second
	defaultLibvirtBackoffMin  = 500 * time.Millisecond
	defaultLibvirtBackoffMax  = 30 * time.Second
	defaultLibvirtEventBuffer = 256
)

// withDefaults returns cfg with its zero fields set to the defaults.
func (cfg libvirtConfig) withDefaults() libvirtConfig {
	if cfg.URI == "" {
		cfg.URI = defaultLibvirtURI
	}
	if cfg.Socket == "" {
		cfg.Socket = defaultLibvirtSocket
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = defaultLibvirtCallTimeout
	}
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = defaultLibvirtBackoffMin
	}
	if cfg.ReconnectMax <= 0 {
		cfg.ReconnectMax = defaultLibvirtBackoffMax
	}
	cfg.ReconnectMax = max(cfg.ReconnectMax, cfg.ReconnectMin)
	if cfg.Namespace == "" {
		cfg.Namespace = defaultTmemNamespace
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = max(cfg.CallTimeout/2, 10*time.Millisecond)
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = defaultLibvirtEventBuffer
	}
	return cfg
}

// DomainMeta is what libvirt knows about one running domain.
//
// ID is libvirt's domain id, which the daemon uses as the Xen domid. Under
// the libxl driver (xen:///system) the two are the same number: the driver
// records the domid libxl returns, and lists Domain-0 as id 0. The test
// driver numbers running domains 1, 2, 3… and never reuses a number, which
// mimics domids but never yields 0.
type DomainMeta struct {
	ID       uint16
	Name     string
	UUID     string // canonical 8-4-4-4-12 lower-case hex
	Settings TmemSettings
}

// DomainEventKind says what happened to a domain.
type DomainEventKind uint8

// Domain event kinds. The first nine are libvirt's lifecycle events.
const (
	DomainDefined DomainEventKind = iota + 1
	DomainUndefined
	DomainStarted
	DomainSuspended
	DomainResumed
	DomainStopped
	DomainShutdown // the guest began shutting down; DomainStopped follows
	DomainPMSuspended
	DomainCrashed
	// DomainMetadataChanged: the domain's tmem metadata changed.
	DomainMetadataChanged
	// DomainsResynced: the source (re)connected and rebuilt the whole view;
	// any domain may have changed. It carries no domain.
	DomainsResynced
)

var domainEventKindNames = [...]string{"", "defined", "undefined", "started", "suspended", "resumed",
	"stopped", "shutdown", "pmsuspended", "crashed", "metadata-changed", "resynced"}

func (k DomainEventKind) String() string {
	if int(k) < len(domainEventKindNames) && k != 0 {
		return domainEventKindNames[k]
	}
	return "unknown"
}

// DomainEvent is a change reported by libvirt. It is sent after Domains
// reflects it.
type DomainEvent struct {
	Kind DomainEventKind
	// Detail is libvirt's detail code for Kind, e.g. for DomainStopped
	// 0 shutdown, 1 destroyed, 2 crashed (virDomainEventStoppedDetailType).
	Detail int32
	// ID is the domain id; HasID is false when the domain has none, as for
	// a domain defined while off. For stop events, which libvirt reports
	// without an id, it is the id the domain had while it ran.
	ID    uint16
	HasID bool
	Name  string
	UUID  string
	Time  time.Time
}

// SourceStatus is the state of the libvirt connection.
type SourceStatus uint8

// Source states.
const (
	SourceDisabled     SourceStatus = iota // Run not running
	SourceConnecting                       // first attempt in progress
	SourceConnected                        // subscribed and in sync
	SourceDisconnected                     // lost or never made; retrying
)

func (s SourceStatus) String() string {
	switch s {
	case SourceDisabled:
		return "disabled"
	case SourceConnecting:
		return "connecting"
	case SourceConnected:
		return "connected"
	case SourceDisconnected:
		return "disconnected"
	}
	return "unknown"
}

// SourceState is the connection state, the last error and since when the
// state holds.
type SourceState struct {
	Status SourceStatus
	Err    error // the last failure while Disconnected; nil otherwise
	Since  time.Time
}

func (s SourceState) String() string {
	if s.Err != nil {
		return s.Status.String() + ": " + s.Err.Error()
	}
	return s.Status.String()
}

// libvirtSource follows libvirt's view of the running domains: names, UUIDs
// and tmem settings from metadata, keyed by domain id. Run connects, keeps
// the view in sync through lifecycle events and reconnects after failures;
// the accessors may be called at any time and are safe for concurrent use.
//
// While disconnected, Domains keeps the last view (Xen's own domain list
// stays the ground truth of which domains exist); State tells whether it is
// live. Each reconnect rebuilds the view from scratch.
type libvirtSource struct {
	cfg     libvirtConfig
	log     *zap.Logger
	events  chan DomainEvent
	dropped atomic.Uint64
	started atomic.Bool

	mu     sync.Mutex // guards state, byID, byName
	state  SourceState
	byID   map[uint16]DomainMeta // replaced on refresh, never modified
	byName map[string]uint16

	// Used only by the Run goroutine.
	meta      map[string]lvMetaEntry // by UUID
	badMeta   map[string]string      // UUID → last bad metadata reported
	connected bool                   // connected at least once
	// noMetaEvents: the daemon refused metadata change events (logged).
	noMetaEvents bool
}

// lvMetaEntry caches a domain's settings for the domain id they were read at.
type lvMetaEntry struct {
	id       uint16
	settings TmemSettings
}

// newLibvirtSource returns a source for cfg; call Run to connect.
func newLibvirtSource(cfg libvirtConfig, log *zap.Logger) *libvirtSource {
	cfg = cfg.withDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	return &libvirtSource{
		cfg:     cfg,
		log:     log.With(zap.String("uri", cfg.URI), zap.String("socket", cfg.Socket)),
		events:  make(chan DomainEvent, cfg.EventBuffer),
		state:   SourceState{Status: SourceDisabled, Since: time.Now()},
		meta:    map[string]lvMetaEntry{},
		badMeta: map[string]string{},
	}
}

// Domains returns a copy of the current view: running domains by id.
func (s *libvirtSource) Domains() map[uint16]DomainMeta {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.byID)
}

// Domain returns the domain with id, without copying the whole view.
func (s *libvirtSource) Domain(id uint16) (DomainMeta, bool) {
	if s == nil {
		return DomainMeta{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.byID[id]
	return m, ok
}

// ByName returns the running domain called name.
func (s *libvirtSource) ByName(name string) (DomainMeta, bool) {
	if s == nil {
		return DomainMeta{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.byName[name]
	if !ok {
		return DomainMeta{}, false
	}
	return s.byID[id], true
}

// Events returns the channel of domain events. It is buffered; when it is
// full, events are dropped and counted (see Dropped). It is closed when Run
// returns.
func (s *libvirtSource) Events() <-chan DomainEvent {
	if s == nil {
		return nil
	}
	return s.events
}

// Dropped returns how many events were dropped because Events was full.
func (s *libvirtSource) Dropped() uint64 {
	if s == nil {
		return 0
	}
	return s.dropped.Load()
}

// State returns the connection state.
func (s *libvirtSource) State() SourceState {
	if s == nil {
		return SourceState{Status: SourceDisabled}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// errLibvirtRunTwice is returned by a second call of Run.
var errLibvirtRunTwice = errors.New("libvirt source already started")

// Run connects to libvirtd and keeps the view in sync until ctx is done.
// After a failure or a lost connection it retries with exponential backoff
// between ReconnectMin and ReconnectMax (with jitter), logging once per
// state change rather than once per attempt. It returns nil once ctx is done
// and its goroutines have exited, and closes Events. Run may be called once.
func (s *libvirtSource) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errLibvirtRunTwice
	}
	defer close(s.events)
	s.setState(SourceConnecting, nil, nil)
	backoff := s.cfg.ReconnectMin
	attempts := 0
	for {
		attempts++
		synced, err := s.session(ctx, attempts)
		if ctx.Err() != nil {
			break
		}
		var fields []zap.Field
		if synced {
			backoff, attempts = s.cfg.ReconnectMin, 0
		} else {
			fields = []zap.Field{zap.Int("attempt", attempts)}
		}
		s.setState(SourceDisconnected, err, fields)
		// Full jitter in the upper half keeps several daemons from
		// reconnecting in lockstep.
		wait := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		if ctx.Err() != nil {
			break
		}
		backoff = min(2*backoff, s.cfg.ReconnectMax)
	}
	s.setState(SourceDisabled, nil, nil)
	return nil
}

// setState records a state change and logs it, once per change: connected,
// reconnected, lost (with the reason), failing to connect, stopped. A
// repeated Disconnected (another failed attempt) only updates the error and
// logs at debug level. Only the Run goroutine calls it.
func (s *libvirtSource) setState(st SourceStatus, err error, fields []zap.Field) {
	now := time.Now()
	s.mu.Lock()
	prev := s.state
	if st == prev.Status && st == SourceDisconnected {
		s.state.Err = err
	} else {
		s.state = SourceState{Status: st, Err: err, Since: now}
	}
	s.mu.Unlock()

	log := s.log.With(fields...)
	switch {
	case st == prev.Status && st == SourceDisconnected:
		log.Debug("libvirt connection attempt failed", zap.Error(err))
	case st == SourceConnected && !s.connected:
		s.connected = true
		log.Info("connected to libvirt")
	case st == SourceConnected:
		log.Info("reconnected to libvirt", zap.Duration("down", now.Sub(prev.Since).Round(time.Millisecond)))
	case st == SourceDisconnected && prev.Status == SourceConnected:
		log.Warn("lost connection to libvirt; reconnecting", zap.Error(err))
	case st == SourceDisconnected:
		log.Warn("cannot connect to libvirt; retrying", zap.Error(err))
	case st == SourceDisabled && prev.Status != SourceDisabled:
		log.Info("libvirt source stopped")
	}
}

// emit sends ev to Events without blocking; a full channel drops it.
func (s *libvirtSource) emit(ev DomainEvent) {
	select {
	case s.events <- ev:
	default:
		if s.dropped.Add(1) == 1 {
			s.log.Warn("libvirt event channel full; dropping events (counted)",
				zap.String("kind", ev.Kind.String()), zap.String("domain", ev.Name))
		}
	}
}
