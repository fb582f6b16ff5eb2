package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/digitalocean/go-libvirt"
	"go.uber.org/zap"
)

const (
	// lvMaxDomID is the highest valid Xen domid (DOMID_FIRST_RESERVED-1).
	lvMaxDomID = 0x7fef
	// lvMetaWorkers bounds concurrent metadata calls. libvirtd's default
	// max_client_requests is 5 per client; stay below it.
	lvMetaWorkers = 4
	// lvCoalesce is how long events are gathered after the first one
	// before the view is refreshed once for all of them.
	lvCoalesce = 20 * time.Millisecond
	// lvMaxBatch bounds the events handled by one refresh.
	lvMaxBatch = 512
	// lvMaxBadMeta bounds the memory of reported bad metadata.
	lvMaxBadMeta = 1024
)

// session runs one connection: connect, subscribe to events, build the
// view, then follow events and check the daemon's health until the
// connection breaks or ctx is done. synced reports whether the view was
// built, i.e. the state reached Connected.
func (s *libvirtSource) session(ctx context.Context, attempt int) (synced bool, err error) {
	start := time.Now()
	c, version, err := lvConnect(&s.cfg)
	if err != nil {
		return false, err
	}
	subCtx, cancel := context.WithCancel(ctx)
	var lc <-chan libvirt.DomainEventLifecycleMsg
	var mc <-chan any
	defer func() {
		cancel()
		s.closeSession(ctx, c, lc, mc)
	}()

	// go-libvirt's event goroutine blocks until its channel is read, so a
	// subscription that completes after its call was abandoned is drained.
	lc, err = lvCallAbandon(c, "subscribe to lifecycle events", func(l *libvirt.Libvirt) (<-chan libvirt.DomainEventLifecycleMsg, error) {
		return l.LifecycleEvents(subCtx)
	}, lvDrain)
	if err != nil {
		return false, err
	}
	mc, err = lvCallAbandon(c, "subscribe to metadata events", func(l *libvirt.Libvirt) (<-chan any, error) {
		return l.SubscribeEvents(subCtx, libvirt.DomainEventIDMetadataChange, libvirt.OptDomain{})
	}, lvDrain)
	if err != nil && c.err() == nil {
		// libvirt < 3.0 rejects the event id (VIR_ERR_INVALID_ARG or
		// unsupported); work without it.
		if !s.noMetaEvents {
			s.noMetaEvents = true
			s.log.Info("libvirt has no metadata change events; metadata is read when a domain starts", zap.Error(err))
		}
		mc, err = nil, nil
	}
	if err != nil {
		return false, err
	}
	n, err := s.refresh(c, nil, true)
	if err != nil {
		return false, err
	}
	s.setState(SourceConnected, nil, []zap.Field{
		zap.Uint64("libvirt_version", version), zap.Int("domains", n),
		zap.Int("attempt", attempt), zap.Duration("took", time.Since(start).Round(time.Microsecond)),
	})
	s.emit(DomainEvent{Kind: DomainsResynced, Time: time.Now()})

	keep := time.NewTicker(max(s.cfg.KeepAlive/2, time.Millisecond))
	defer keep.Stop()
	for {
		var first lvPending
		select {
		case <-ctx.Done():
			return true, nil
		case <-c.dead:
			return true, c.err()
		case <-c.gone:
			c.fail(fmt.Errorf("%w: connection closed by libvirtd", errLibvirtDisconnected))
			return true, c.err()
		case <-keep.C:
			if c.idle(time.Now()) < s.cfg.KeepAlive {
				continue
			}
			if _, err := lvCall(c, "keepalive", (*libvirt.Libvirt).ConnectGetLibVersion); err != nil {
				return true, err
			}
			continue
		case m, ok := <-lc:
			if !ok {
				return true, s.streamClosed(c)
			}
			first = lvLifecycle(m)
		case m, ok := <-mc:
			if !ok {
				return true, s.streamClosed(c)
			}
			p, mine := s.lvMetadataChange(m)
			if !mine {
				continue
			}
			first = p
		}
		batch, closed := s.gather(first, lc, mc)
		if err := s.apply(c, batch); err != nil {
			return true, err
		}
		if closed {
			return true, s.streamClosed(c)
		}
	}
}

// lvDrain reads ch until it is closed.
func lvDrain[T any](ch <-chan T) {
	for range ch {
	}
}

// streamClosed is the error for an event stream that go-libvirt closed:
// it does so when the connection drops.
func (s *libvirtSource) streamClosed(c *lvConn) error {
	c.fail(fmt.Errorf("%w: event stream closed", errLibvirtDisconnected))
	return c.err()
}

// lvPending is a received event waiting for the refresh.
type lvPending struct {
	kind   DomainEventKind
	detail int32
	dom    libvirt.Domain
	// oldID, oldOK: the domain's id in the view before the refresh.
	oldID uint16
	oldOK bool
}

func lvLifecycle(m libvirt.DomainEventLifecycleMsg) lvPending {
	p := lvPending{detail: m.Detail, dom: m.Dom}
	if m.Event >= int32(libvirt.DomainEventDefined) && m.Event <= int32(libvirt.DomainEventCrashed) {
		p.kind = DomainEventKind(m.Event + 1) // same order as libvirt's
	}
	return p
}

// lvMetadataChange converts a metadata change event; mine is false for
// changes to other namespaces, the title or the description.
func (s *libvirtSource) lvMetadataChange(m any) (p lvPending, mine bool) {
	ev, ok := m.(*libvirt.DomainEventCallbackMetadataChangeMsg)
	if !ok || ev.Type != int32(libvirt.DomainMetadataElement) {
		return lvPending{}, false
	}
	if len(ev.Nsuri) > 0 && ev.Nsuri[0] != s.cfg.Namespace {
		return lvPending{}, false
	}
	return lvPending{kind: DomainMetadataChanged, dom: ev.Dom}, true
}

// gather collects the events that arrive within lvCoalesce of first, so a
// burst costs one refresh. closed reports a closed stream.
func (s *libvirtSource) gather(first lvPending, lc <-chan libvirt.DomainEventLifecycleMsg, mc <-chan any) (batch []lvPending, closed bool) {
	batch = []lvPending{first}
	t := time.NewTimer(lvCoalesce)
	defer t.Stop()
	for len(batch) < lvMaxBatch {
		select {
		case m, ok := <-lc:
			if !ok {
				return batch, true
			}
			batch = append(batch, lvLifecycle(m))
		case m, ok := <-mc:
			if !ok {
				return batch, true
			}
			if p, mine := s.lvMetadataChange(m); mine {
				batch = append(batch, p)
			}
		case <-t.C:
			return batch, false
		}
	}
	return batch, false
}

// apply refreshes the view for a batch of events, then emits them.
func (s *libvirtSource) apply(c *lvConn, batch []lvPending) error {
	dirty := map[string]bool{}
	for i := range batch {
		p := &batch[i]
		u := lvUUID(p.dom.UUID)
		if e, ok := s.meta[u]; ok {
			p.oldID, p.oldOK = e.id, true
		}
		if p.kind == DomainMetadataChanged {
			dirty[u] = true
		}
	}
	if _, err := s.refresh(c, dirty, false); err != nil {
		return err
	}
	now := time.Now()
	for _, p := range batch {
		if p.kind == 0 {
			continue
		}
		ev := DomainEvent{Kind: p.kind, Detail: p.detail, Name: p.dom.Name, UUID: lvUUID(p.dom.UUID), Time: now}
		switch {
		case p.dom.ID >= 0 && p.dom.ID <= lvMaxDomID:
			ev.ID, ev.HasID = uint16(p.dom.ID), true
		case p.oldOK: // stop events come with id -1
			ev.ID, ev.HasID = p.oldID, true
		}
		s.emit(ev)
	}
	return nil
}

// lvItem is one running domain during a refresh.
type lvItem struct {
	dom      libvirt.Domain
	uuid     string
	fetch    bool   // read its metadata
	xml      string // the metadata read
	err      error  // the error reading it
	settings TmemSettings
	cache    bool // remember settings for this domain id
}

// refresh lists the running domains and replaces the view. It reads the
// metadata of every domain when full, else only of domains that are new,
// have a new id (restarted), or are dirty (metadata changed). It returns
// the number of domains.
func (s *libvirtSource) refresh(c *lvConn, dirty map[string]bool, full bool) (int, error) {
	doms, err := lvCall(c, "list domains", func(l *libvirt.Libvirt) ([]libvirt.Domain, error) {
		d, _, err := l.ConnectListAllDomains(1, libvirt.ConnectListDomainsActive)
		return d, err
	})
	if err != nil {
		return 0, err
	}
	items := make([]lvItem, 0, len(doms))
	for _, d := range doms {
		if d.ID < 0 || d.ID > lvMaxDomID {
			s.log.Debug("ignoring domain without a valid domid", zap.String("domain", d.Name), zap.Int32("id", d.ID))
			continue
		}
		it := lvItem{dom: d, uuid: lvUUID(d.UUID), cache: true}
		e, ok := s.meta[it.uuid]
		if full || !ok || e.id != uint16(d.ID) || dirty[it.uuid] {
			it.fetch = true
		} else {
			it.settings = e.settings
		}
		items = append(items, it)
	}
	s.fetchMeta(c, items)

	byID := make(map[uint16]DomainMeta, len(items))
	byName := make(map[string]uint16, len(items))
	meta := make(map[string]lvMetaEntry, len(items))
	for i := range items {
		it := &items[i]
		if it.fetch {
			if err := s.settle(c, it); err != nil {
				return 0, err
			}
		}
		if it.dom.ID < 0 { // vanished between list and metadata
			continue
		}
		id := uint16(it.dom.ID)
		byID[id] = DomainMeta{ID: id, Name: it.dom.Name, UUID: it.uuid, Settings: it.settings}
		byName[it.dom.Name] = id
		if it.cache {
			meta[it.uuid] = lvMetaEntry{id: id, settings: it.settings}
		}
	}
	s.meta = meta
	s.mu.Lock()
	s.byID, s.byName = byID, byName
	s.mu.Unlock()
	return len(byID), nil
}

// fetchMeta reads the metadata of the items marked fetch, a few at a time.
func (s *libvirtSource) fetchMeta(c *lvConn, items []lvItem) {
	ns := libvirt.OptString{s.cfg.Namespace}
	var wg sync.WaitGroup
	sem := make(chan struct{}, lvMetaWorkers)
	for i := range items {
		if !items[i].fetch {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(it *lvItem) {
			defer wg.Done()
			defer func() { <-sem }()
			it.xml, it.err = lvCall(c, "get metadata of "+it.dom.Name, func(l *libvirt.Libvirt) (string, error) {
				return l.DomainGetMetadata(it.dom, int32(libvirt.DomainMetadataElement), ns, libvirt.DomainAffectCurrent)
			})
		}(&items[i])
	}
	wg.Wait()
}

// settle turns a fetched item's metadata (or error) into settings. It
// returns an error only when the connection broke.
func (s *libvirtSource) settle(c *lvConn, it *lvItem) error {
	switch {
	case it.err == nil:
		st, err := parseTmemMetadata([]byte(it.xml), s.cfg.Namespace)
		if err != nil {
			s.reportBadMeta(it, it.xml, err)
			return nil
		}
		delete(s.badMeta, it.uuid)
		it.settings = st
	case errors.Is(it.err, errLibvirtNoMetadata):
		delete(s.badMeta, it.uuid)
	case errors.Is(it.err, errLibvirtNoDomain):
		it.dom.ID = -1 // gone; the event saying so follows
	case c.err() != nil:
		return c.err()
	default:
		// An unexpected error for this one domain: no settings, and read
		// again on the next refresh.
		it.cache = false
		s.reportBadMeta(it, "error: "+it.err.Error(), it.err)
	}
	return nil
}

// reportBadMeta logs bad metadata once per domain and content; the domain
// runs with default settings.
func (s *libvirtSource) reportBadMeta(it *lvItem, content string, err error) {
	if s.badMeta[it.uuid] == content {
		return
	}
	if len(s.badMeta) >= lvMaxBadMeta {
		clear(s.badMeta)
	}
	s.badMeta[it.uuid] = content
	s.log.Warn("ignoring tmem metadata of domain", zap.String("domain", it.dom.Name),
		zap.String("uuid", it.uuid), zap.Error(err))
}

// closeSession ends a session's connection. The subscriptions' context is
// already cancelled; their channels are drained until go-libvirt closes
// them. A healthy connection is closed politely when ctx is done.
func (s *libvirtSource) closeSession(ctx context.Context, c *lvConn, lc <-chan libvirt.DomainEventLifecycleMsg, mc <-chan any) {
	graceful := ctx.Err() != nil && c.err() == nil
	if !graceful {
		c.fail(errLvClosed)
	}
	deadline := time.NewTimer(c.timeout)
	defer deadline.Stop()
	for lc != nil || mc != nil {
		select {
		case _, ok := <-lc:
			if !ok {
				lc = nil
			}
		case _, ok := <-mc:
			if !ok {
				mc = nil
			}
		case <-deadline.C:
			// Not expected: go-libvirt closes them on cancel or when the
			// socket closes. Close the socket and leave the draining to
			// tracked goroutines.
			s.log.Warn("libvirt event streams did not close in time")
			c.fail(errLvClosed)
			if lc != nil {
				c.calls.Add(1)
				go func(ch <-chan libvirt.DomainEventLifecycleMsg) { defer c.calls.Done(); lvDrain(ch) }(lc)
			}
			if mc != nil {
				c.calls.Add(1)
				go func(ch <-chan any) { defer c.calls.Done(); lvDrain(ch) }(mc)
			}
			lc, mc = nil, nil
		}
	}
	if !c.close(graceful) {
		s.log.Warn("libvirt calls did not finish after the connection closed")
	}
}

// lvUUID formats a UUID as 8-4-4-4-12 lower-case hex.
func lvUUID(u libvirt.UUID) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, 36)
	for i, x := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hex[x>>4], hex[x&0xf])
	}
	return string(b)
}
