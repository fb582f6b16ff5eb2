package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/xentmem/xentmem/internal/control"
	"github.com/xentmem/xentmem/pools"
	"github.com/xentmem/xentmem/xenctl"
)

// StatusResult is the reply to "status" (docs/control-api.md).
type StatusResult struct {
	Mode        string            `json:"mode"` // xen or sim
	Xen         string            `json:"xen"`
	Generation  string            `json:"generation"`
	Tmem        string            `json:"tmem"`
	TmemOK      bool              `json:"tmem_available"`
	DryRun      bool              `json:"dry_run"`
	Ticks       uint64            `json:"ticks"`
	LastTick    time.Time         `json:"last_tick"`
	LastError   string            `json:"last_error,omitempty"`
	TotalKiB    uint64            `json:"total_kib"`
	FreeKiB     uint64            `json:"free_kib"`
	FreeableMiB uint64            `json:"freeable_mib"`
	Zone        string            `json:"zone"`
	HostScore   float64           `json:"host_pressure"`
	Domains     int               `json:"domains"`
	Clients     int               `json:"tmem_clients"`
	Actions     map[string]uint64 `json:"actions"`
	Libvirt     string            `json:"libvirt,omitempty"`
}

// ListResult is the reply to "list": the raw LIST text, exactly as Xen
// produced it (what `xl tmem-list` prints), the parsed records, and names.
type ListResult struct {
	Text    string            `json:"text"`
	List    *xenctl.List      `json:"list"`
	Names   map[string]string `json:"names"` // domid → name
	Domains []ListDomain      `json:"domains"`
	Time    time.Time         `json:"time"`
	Version string            `json:"xen"`
}

// ListDomain is a domain of Xen's list, with its name.
type ListDomain struct {
	ID       uint16 `json:"id"`
	Name     string `json:"name"`
	TotPages uint64 `json:"tot_pages"`
	MaxPages uint64 `json:"max_pages"`
}

// handle is the control.Handler of the daemon.
func (d *daemon) handle(ctx context.Context, op string, args any) (any, error) {
	switch op {
	case control.OpStatus:
		return d.status(), nil
	case control.OpList:
		return d.list(args.(*control.ListArgs))
	case control.OpFreeze, control.OpThaw, control.OpDestroy:
		a := args.(*control.DomainArgs)
		id, err := d.resolve(a.Domain, a.All)
		if err != nil {
			return nil, err
		}
		switch op {
		case control.OpFreeze:
			err = d.xen.Freeze(id)
		case control.OpThaw:
			err = d.xen.Thaw(id)
		default:
			err = d.xen.Destroy(id)
		}
		d.audit(op, a.Domain, err)
		return nil, ctlError(err)
	case control.OpSet:
		return nil, d.set(args.(*control.SetArgs))
	case control.OpFlush:
		kib := args.(*control.FlushArgs).KiB
		freed, err := d.xen.Flush(xenctl.AllClients, uint32(kib))
		d.audit(op, fmt.Sprintf("%d KiB", kib), err)
		if err != nil {
			return nil, ctlError(err)
		}
		return map[string]uint64{"freed_kib": freed}, nil
	case control.OpFreeable:
		mib, err := d.xen.QueryFreeableMiB()
		if err != nil {
			return nil, ctlError(err)
		}
		return map[string]uint64{"freeable_mib": mib}, nil
	case control.OpSharedAuth:
		a := args.(*control.SharedAuthArgs)
		id, err := d.resolve(a.Domain, a.All)
		if err != nil {
			return nil, err
		}
		u, err := xenctl.ParseUUID(a.UUID)
		if err != nil {
			return nil, &control.Error{Code: control.CodeBadRequest, Message: err.Error()}
		}
		ok, err := d.xen.SharedAuth(id, u, a.Authorise)
		d.audit(op, a.Domain, err)
		if err != nil {
			return nil, ctlError(err)
		}
		return map[string]bool{"changed": ok}, nil
	case control.OpPoolCreate:
		return d.poolCreate(args.(*control.PoolCreateArgs))
	case control.OpSave, control.OpRestore:
		return nil, d.saveRestore(ctx, op, args.(*control.SaveArgs))
	case control.OpReserve:
		return d.reserveOp(ctx, args.(*control.ReserveArgs))
	case control.OpCowdList, control.OpCowdAttach, control.OpCowdDetach:
		return nil, &control.Error{Code: control.CodeUnavailable, Message: "cowd supervision is not part of this daemon build yet"}
	}
	return nil, &control.Error{Code: control.CodeUnknownOp, Message: op}
}

func (d *daemon) audit(op, target string, err error) {
	if err != nil {
		d.log.Sugar().Infow("control request failed", "op", op, "target", target, "error", err)
		return
	}
	d.log.Sugar().Infow("control request", "op", op, "target", target)
	d.bus.publish(control.Event{Kind: "control", Domain: target, Message: op})
}

// ctlError turns an xenctl error into a control error with a stable code.
func ctlError(err error) error {
	if err == nil {
		return nil
	}
	code := control.CodeFailed
	switch {
	case errors.Is(err, xenctl.ErrNotSupported):
		code = control.CodeUnsupported
	case errors.Is(err, xenctl.ErrFrozen):
		code = control.CodeFrozen
	case errors.Is(err, xenctl.ErrNoClient):
		code = control.CodeNoDomain
	case errors.Is(err, xenctl.ErrNoTmem), errors.Is(err, xenctl.ErrTmemDisabled):
		code = control.CodeUnavailable
	case errors.Is(err, xenctl.ErrBadInput):
		code = control.CodeBadRequest
	}
	return &control.Error{Code: code, Message: err.Error()}
}

// resolve turns a domain name or id (or "all") into a tmem client id. The
// domain must exist in Xen's list.
func (d *daemon) resolve(name string, all bool) (uint16, error) {
	if all {
		return xenctl.AllClients, nil
	}
	o, _ := d.snapshot()
	names := map[uint16]string{}
	var doms []xenctl.DomainInfo
	if o != nil {
		names, doms = o.Names, o.Domains
	}
	if d.names != nil {
		names = d.names.names()
	}
	exists := func(id uint16) bool {
		for _, dd := range doms {
			if dd.ID == id {
				return true
			}
		}
		return o == nil
	}
	if id, err := strconv.ParseUint(strings.TrimPrefix(name, "dom"), 10, 16); err == nil && id < 0x7FF0 {
		if exists(uint16(id)) {
			return uint16(id), nil
		}
	}
	if name == "Domain-0" {
		return 0, nil
	}
	for id, n := range names {
		if n == name && exists(id) {
			return id, nil
		}
	}
	return 0, &control.Error{Code: control.CodeNoDomain, Message: fmt.Sprintf("no domain %q (give a name or an id; see 'tmemctl xen-info')", name)}
}

func (d *daemon) status() *StatusResult {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := &StatusResult{Mode: d.mode, Xen: d.xen.Version().String(), Generation: d.xen.Generation().String(),
		DryRun: d.dryRun, Ticks: d.ticks, Actions: map[string]uint64{}}
	for k, v := range d.actions {
		st.Actions[k[0]] += v
	}
	if d.lastErr != nil {
		st.LastError = d.lastErr.Error()
	}
	if o := d.last; o != nil {
		st.LastTick, st.Tmem, st.TmemOK = o.Time, o.Tmem.Reason, o.Tmem.Available
		st.TotalKiB, st.FreeKiB, st.FreeableMiB = o.Physinfo.TotalKiB(), o.Physinfo.FreeKiB(), o.Freeable
		st.Domains, st.Clients = len(o.Domains), len(o.Snapshot.Clients)
	}
	if a := d.policy.Assessment(); a != nil {
		st.Zone, st.HostScore = a.Pressure.Zone.String(), a.Pressure.Score
	}
	if ls, ok := d.names.(interface{ state() string }); ok {
		st.Libvirt = ls.state()
	}
	return st
}

// list returns a fresh LIST (not the cached one: the CLI wants now).
func (d *daemon) list(a *control.ListArgs) (*ListResult, error) {
	cli := xenctl.AllClients
	if a.Domain != "" {
		id, err := d.resolve(a.Domain, false)
		if err != nil {
			return nil, err
		}
		cli = id
	}
	text, err := d.xen.List(cli, a.Long)
	if err != nil {
		return nil, ctlError(err)
	}
	l, err := xenctl.ParseList(text)
	if err != nil {
		return nil, ctlError(err)
	}
	doms, err := d.xen.Domains()
	if err != nil {
		return nil, ctlError(err)
	}
	res := &ListResult{Text: string(text), List: l, Names: map[string]string{}, Time: d.now(), Version: d.xen.Version().String()}
	var names map[uint16]string
	if d.names != nil {
		names = d.names.names()
	}
	for _, dd := range doms {
		n := domainName(names, dd.ID)
		res.Names[strconv.Itoa(int(dd.ID))] = n
		res.Domains = append(res.Domains, ListDomain{ID: dd.ID, Name: n, TotPages: dd.TotPages, MaxPages: dd.MaxPages})
	}
	return res, nil
}

func (d *daemon) set(a *control.SetArgs) error {
	id, err := d.resolve(a.Domain, a.All)
	if err != nil {
		return err
	}
	if a.Weight != nil {
		if err := d.xen.SetWeight(id, *a.Weight); err != nil {
			d.audit("set weight", a.Domain, err)
			return ctlError(err)
		}
	}
	if a.Cap != nil {
		if err := d.xen.SetCap(id, *a.Cap); err != nil {
			d.audit("set cap", a.Domain, err)
			return ctlError(err)
		}
	}
	if a.Compress != nil {
		if err := d.xen.SetCompress(id, *a.Compress); err != nil {
			d.audit("set compress", a.Domain, err)
			return ctlError(err)
		}
	}
	d.audit(control.OpSet, a.Domain, nil)
	return nil
}

func (d *daemon) poolCreate(a *control.PoolCreateArgs) (any, error) {
	id, err := d.resolve(a.Domain, false)
	if err != nil {
		return nil, err
	}
	// The pool goes into the client's first free slot.
	used := map[int]bool{}
	if infos, err := d.xen.PoolInfo(id); err == nil {
		for _, p := range infos {
			used[p.ID] = true
		}
	} else if !errors.Is(err, xenctl.ErrNoClient) {
		return nil, ctlError(err)
	}
	slot := 0
	for used[slot] {
		slot++
	}
	if slot >= 16 {
		return nil, &control.Error{Code: control.CodeFailed, Message: fmt.Sprintf("domain %s already has 16 tmem pools", a.Domain)}
	}
	pi := xenctl.PoolInfo{ID: slot}
	if a.Persistent {
		pi.Flags |= xenctl.PoolPersistent
	}
	if a.Shared {
		u, err := xenctl.ParseUUID(a.UUID)
		if err != nil {
			return nil, &control.Error{Code: control.CodeBadRequest, Message: err.Error()}
		}
		pi.Flags |= xenctl.PoolShared
		pi.UUID = u
	}
	ids, err := d.xen.CreatePools(id, []xenctl.PoolInfo{pi})
	d.audit(control.OpPoolCreate, a.Domain, err)
	if err != nil {
		return nil, ctlError(err)
	}
	return map[string][]int{"pools": ids}, nil
}

func (d *daemon) saveRestore(ctx context.Context, op string, a *control.SaveArgs) error {
	id, err := d.resolve(a.Domain, false)
	if err != nil {
		return err
	}
	if op == control.OpSave {
		f, err := os.OpenFile(a.File, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return &control.Error{Code: control.CodeFailed, Message: err.Error()}
		}
		err = d.xen.SaveDomain(ctx, id, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(a.File)
		}
		d.audit(op, a.Domain, err)
		return ctlError(err)
	}
	f, err := os.Open(a.File)
	if err != nil {
		return &control.Error{Code: control.CodeFailed, Message: err.Error()}
	}
	defer f.Close()
	err = d.xen.RestoreDomain(ctx, id, f)
	d.audit(op, a.Domain, err)
	return ctlError(err)
}

// ReserveResult answers "reserve".
type ReserveResult struct {
	Done       bool   `json:"done"`
	Reason     string `json:"reason"`
	FlushedKiB uint64 `json:"flushed_kib"`
}

func (d *daemon) reserveOp(ctx context.Context, a *control.ReserveArgs) (any, error) {
	timeout := 30 * time.Second
	if a.TimeoutMs > 0 {
		timeout = time.Duration(a.TimeoutMs) * time.Millisecond
	}
	who := a.Domain
	if who == "" {
		who = "a new domain"
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+2*time.Second)
	defer cancel()
	r, err := d.reserve(ctx, who, a.MiB, timeout)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return &ReserveResult{Done: true, Reason: "enough memory is free already"}, nil
	}
	_, kib := r.Flushes()
	res := &ReserveResult{Done: r.State() == pools.ReserveDone, Reason: r.Reason(), FlushedKiB: kib}
	if !res.Done {
		return nil, &control.Error{Code: control.CodeTimeout, Message: r.String()}
	}
	return res, nil
}
