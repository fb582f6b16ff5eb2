package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/internal/control"
	"github.com/xentmem/xentmem/xenctl"
)

// directBackend runs the control API's ops in this process against Xen (or
// any hypercall.Caller, such as the simulator in tests). Its ops mirror
// xen-tmemd's handler (cmd/xen-tmemd/control.go) one for one, including the
// error codes, except that domains have no names beyond Domain-0 and domN
// (Xen knows only ids) and "reserve" needs the daemon. It is safe for
// concurrent use, as xenctl.Client is.
type directBackend struct {
	cl    *xenctl.Client
	close func() error // closes the Caller; may be nil
	mode  string       // "xen", or "sim" in tests
	now   func() time.Time
}

func (*directBackend) Daemon() bool { return false }

// openDirect opens privcmd and returns the direct backend. Its errors are
// diagnosed (xenctl.Diagnose): they say what is missing.
func openDirect(e *env) (backend, error) {
	conn, err := hypercall.Open(&hypercall.Config{PrivcmdPath: e.global.privcmd})
	if err != nil {
		return nil, xenctl.Diagnose(xenctl.HostPaths{}, err)
	}
	be, err := newDirect(conn, conn.Close, "xen", e.now)
	if err != nil {
		conn.Close()
		return nil, xenctl.Diagnose(xenctl.HostPaths{}, err)
	}
	return be, nil
}

// newDirect builds the direct backend on c; closeFn (may be nil) closes c.
func newDirect(c hypercall.Caller, closeFn func() error, mode string, now func() time.Time) (*directBackend, error) {
	cl, err := xenctl.New(c, nil)
	if err != nil {
		return nil, err
	}
	return &directBackend{cl: cl, close: closeFn, mode: mode, now: now}, nil
}

func (d *directBackend) Close() error {
	err := d.cl.Close()
	if d.close != nil {
		err = errors.Join(err, d.close())
	}
	return err
}

// Call encodes and decodes the request as the daemon's server does (so the
// arguments are validated the same way), runs it, and passes the result
// through JSON into result.
func (d *directBackend) Call(ctx context.Context, op string, args, result any) error {
	line, err := control.EncodeRequest(1, op, args)
	if err != nil {
		return err
	}
	_, a, err := control.DecodeRequest(line)
	if err != nil {
		return &control.Error{Code: control.CodeBadRequest, Message: err.Error()}
	}
	res, err := d.handle(ctx, op, a)
	if err != nil {
		var ce *control.Error
		if !errors.As(err, &ce) {
			ce = &control.Error{Code: control.CodeFailed, Message: err.Error()}
		}
		return ce
	}
	if result == nil || res == nil {
		return nil
	}
	b, err := json.Marshal(res)
	if err != nil {
		return &control.Error{Code: control.CodeFailed, Message: "encode result: " + err.Error()}
	}
	return json.Unmarshal(b, result)
}

// handle is a control.Handler: tests serve it over net.Pipe to exercise
// the daemon backend.
func (d *directBackend) handle(ctx context.Context, op string, args any) (any, error) {
	switch op {
	case control.OpStatus:
		return d.status()
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
			err = d.cl.Freeze(id)
		case control.OpThaw:
			err = d.cl.Thaw(id)
		default:
			err = d.cl.Destroy(id)
		}
		return nil, ctlError(err)
	case control.OpSet:
		return nil, d.set(args.(*control.SetArgs))
	case control.OpFlush:
		freed, err := d.cl.Flush(xenctl.AllClients, uint32(args.(*control.FlushArgs).KiB))
		if err != nil {
			return nil, ctlError(err)
		}
		return &flushResult{FreedKiB: freed}, nil
	case control.OpFreeable:
		mib, err := d.cl.QueryFreeableMiB()
		if err != nil {
			return nil, ctlError(err)
		}
		return &freeableResult{FreeableMiB: mib}, nil
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
		ok, err := d.cl.SharedAuth(id, u, a.Authorise)
		if err != nil {
			return nil, ctlError(err)
		}
		return &sharedAuthResult{Changed: ok}, nil
	case control.OpPoolCreate:
		return d.poolCreate(args.(*control.PoolCreateArgs))
	case control.OpSave, control.OpRestore:
		return nil, d.saveRestore(ctx, op, args.(*control.SaveArgs))
	case control.OpReserve:
		return nil, &control.Error{Code: control.CodeUnavailable, Message: "reservations are made by xen-tmemd, which is not in use"}
	case control.OpEvents, control.OpCowdList, control.OpCowdAttach, control.OpCowdDetach:
		return nil, &control.Error{Code: control.CodeUnavailable, Message: op + " needs xen-tmemd"}
	}
	return nil, &control.Error{Code: control.CodeUnknownOp, Message: op}
}

// ctlError turns an xenctl error into a control error with the daemon's
// code (cmd/xen-tmemd/control.go, ctlError).
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

// resolve turns a domain (an id, domN or Domain-0) or "all" into a tmem
// client id. The domain must be in Xen's list.
func (d *directBackend) resolve(name string, all bool) (uint16, error) {
	if all {
		return xenctl.AllClients, nil
	}
	doms, err := d.cl.Domains()
	if err != nil {
		return 0, ctlError(err)
	}
	exists := func(id uint16) bool {
		for _, dd := range doms {
			if dd.ID == id {
				return true
			}
		}
		return false
	}
	if id, err := strconv.ParseUint(strings.TrimPrefix(name, "dom"), 10, 16); err == nil && id < 0x7FF0 && exists(uint16(id)) {
		return uint16(id), nil
	}
	if name == "Domain-0" {
		return 0, nil
	}
	return 0, &control.Error{Code: control.CodeNoDomain, Message: fmt.Sprintf("no domain %q (give a name or an id; see 'tmemctl xen-info')", name)}
}

func (d *directBackend) list(a *control.ListArgs) (*listResult, error) {
	cli := xenctl.AllClients
	if a.Domain != "" {
		id, err := d.resolve(a.Domain, false)
		if err != nil {
			return nil, err
		}
		cli = id
	}
	text, err := d.cl.List(cli, a.Long)
	if err != nil {
		return nil, ctlError(err)
	}
	if _, err := xenctl.ParseList(text); err != nil {
		return nil, ctlError(err)
	}
	doms, err := d.cl.Domains()
	if err != nil {
		return nil, ctlError(err)
	}
	res := &listResult{Text: string(text), Names: map[string]string{}, Time: d.now(), Version: d.cl.Version().String()}
	for _, dd := range doms {
		n := domainName(nil, dd.ID)
		res.Names[strconv.Itoa(int(dd.ID))] = n
		res.Domains = append(res.Domains, listDomain{ID: dd.ID, Name: n, TotPages: dd.TotPages, MaxPages: dd.MaxPages})
	}
	return res, nil
}

// status answers the part of the daemon's "status" that needs no
// monitoring history.
func (d *directBackend) status() (*statusResult, error) {
	st := &statusResult{Mode: d.mode, Xen: d.cl.Version().String(), Generation: d.cl.Generation().String()}
	ts, err := d.cl.ProbeTmem()
	if err != nil {
		return nil, ctlError(err)
	}
	st.Tmem, st.TmemOK = ts.Reason, ts.Available
	pi, err := d.cl.Physinfo()
	if err != nil {
		return nil, ctlError(err)
	}
	st.TotalKiB, st.FreeKiB = pi.TotalKiB(), pi.FreeKiB()
	doms, err := d.cl.Domains()
	if err != nil {
		return nil, ctlError(err)
	}
	st.Domains = len(doms)
	if ts.Available {
		if st.FreeableMiB, err = d.cl.QueryFreeableMiB(); err != nil {
			return nil, ctlError(err)
		}
		text, err := d.cl.List(xenctl.AllClients, false)
		if err != nil {
			return nil, ctlError(err)
		}
		l, err := xenctl.ParseList(text)
		if err != nil {
			return nil, ctlError(err)
		}
		st.Clients = len(l.Clients)
	}
	return st, nil
}

func (d *directBackend) set(a *control.SetArgs) error {
	id, err := d.resolve(a.Domain, a.All)
	if err != nil {
		return err
	}
	if a.Weight != nil {
		if err := d.cl.SetWeight(id, *a.Weight); err != nil {
			return ctlError(err)
		}
	}
	if a.Cap != nil {
		if err := d.cl.SetCap(id, *a.Cap); err != nil {
			return ctlError(err)
		}
	}
	if a.Compress != nil {
		if err := d.cl.SetCompress(id, *a.Compress); err != nil {
			return ctlError(err)
		}
	}
	return nil
}

// poolCreate puts the pool into the client's first free slot, as the
// daemon does.
func (d *directBackend) poolCreate(a *control.PoolCreateArgs) (any, error) {
	id, err := d.resolve(a.Domain, false)
	if err != nil {
		return nil, err
	}
	used := map[int]bool{}
	if infos, err := d.cl.PoolInfo(id); err == nil {
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
	ids, err := d.cl.CreatePools(id, []xenctl.PoolInfo{pi})
	if err != nil {
		return nil, ctlError(err)
	}
	return &poolCreateResult{Pools: ids}, nil
}

// saveRestore writes or reads the save stream; save refuses to overwrite.
func (d *directBackend) saveRestore(ctx context.Context, op string, a *control.SaveArgs) error {
	id, err := d.resolve(a.Domain, false)
	if err != nil {
		return err
	}
	if op == control.OpSave {
		f, err := os.OpenFile(a.File, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return &control.Error{Code: control.CodeFailed, Message: err.Error()}
		}
		err = d.cl.SaveDomain(ctx, id, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(a.File)
		}
		return ctlError(err)
	}
	f, err := os.Open(a.File)
	if err != nil {
		return &control.Error{Code: control.CodeFailed, Message: err.Error()}
	}
	defer f.Close()
	return ctlError(d.cl.RestoreDomain(ctx, id, f))
}
