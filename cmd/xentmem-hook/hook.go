package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/xentmem/xentmem/internal/control"
)

// hook runs one libvirt hook invocation against xen-tmemd.
type hook struct {
	cfg    hookConfig
	stderr io.Writer
}

// attachInfo is the part of the daemon's cowd-attach reply the hook reports.
type attachInfo struct {
	NBDDevice string `json:"nbd_device"`
	Link      string `json:"link"`
	Socket    string `json:"socket"`
	PID       int    `json:"pid"`
}

// run dispatches on the operation (args: DOMAIN OPERATION SUBOP EXTRA) and
// returns the exit status. It always drains stdin, where libvirt writes
// the domain XML.
func (h *hook) run(ctx context.Context, args []string, stdin io.Reader) int {
	if len(args) < 2 {
		fmt.Fprintln(h.stderr, "usage: xentmem-hook [--config FILE] [--socket PATH] DOMAIN OPERATION SUBOP EXTRA (domain XML on stdin)")
		return 2
	}
	name, op := args[0], args[1]
	defer io.Copy(io.Discard, io.LimitReader(stdin, maxDomainXML))
	switch op {
	case "prepare":
		return h.prepare(ctx, name, stdin)
	case "started":
		return h.started(ctx, name, stdin)
	case "release":
		return h.release(ctx, name, stdin)
	}
	// start, stopped, reconnect: nothing to do. migrate: no output keeps
	// the XML unchanged.
	return 0
}

func (h *hook) failf(name, f string, a ...any) int {
	fmt.Fprintf(h.stderr, "xentmem-hook: %s: %s\n", name, fmt.Sprintf(f, a...))
	return 1
}

func (h *hook) warnf(name, f string, a ...any) {
	fmt.Fprintf(h.stderr, "xentmem-hook: warning: %s: %s\n", name, fmt.Sprintf(f, a...))
}

// dial connects to xen-tmemd within the call timeout.
func (h *hook) dial(ctx context.Context) (*control.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.CallTimeout)
	defer cancel()
	return control.Dial(ctx, h.cfg.Socket)
}

// prepare reserves memory for the domain and attaches its cowd disks. The
// start is refused when a reservation times out, when a cowd disk cannot
// be attached, or when cowd disks are declared and xen-tmemd is absent.
func (h *hook) prepare(ctx context.Context, name string, stdin io.Reader) int {
	d, err := parseDomain(stdin, h.cfg.Namespace)
	if err != nil {
		return h.failf(name, "%v", err)
	}
	name = d.Name
	if d.SettingsErr != nil {
		h.warnf(name, "ignoring the tmem settings: %v", d.SettingsErr)
	}
	cl, err := h.dial(ctx)
	if err != nil {
		if len(d.Cowd) > 0 {
			return h.failf(name, "the domain needs cowd disks (%s) but %v", diskList(d.Cowd), err)
		}
		h.warnf(name, "%v; starting without a tmem reservation", err)
		return 0
	}
	defer cl.Close()

	mib := d.MemoryMiB()
	if d.Settings.ReserveMiB != nil {
		mib += *d.Settings.ReserveMiB
	}
	if mib > 0 {
		if code := h.reserve(ctx, cl, name, mib); code != 0 {
			return code
		}
	}
	for i, c := range d.Cowd {
		if err := h.attach(ctx, cl, name, c); err != nil {
			for _, prev := range d.Cowd[:i] {
				if derr := h.detach(ctx, cl, name, prev.Disk); derr != nil {
					h.warnf(name, "undo cowd disk %s: %v", prev.Disk, derr)
				}
			}
			return h.failf(name, "cowd disk %s: %v", c.Disk, err)
		}
	}
	return 0
}

// reserve asks the daemon to make mib MiB free. Only a reservation that
// times out (or a daemon that does not answer in time) stops the start: any
// other refusal — no tmem on this Xen, nothing to flush — is a warning,
// because Xen and libxl (autoballoon) decide whether the domain fits.
func (h *hook) reserve(ctx context.Context, cl *control.Client, name string, mib uint64) int {
	timeout := h.cfg.ReserveTimeout
	ctx, cancel := context.WithTimeout(ctx, timeout+h.cfg.CallTimeout)
	defer cancel()
	var res struct {
		Done   bool   `json:"done"`
		Reason string `json:"reason"`
	}
	err := cl.Call(ctx, control.OpReserve, &control.ReserveArgs{MiB: mib, Domain: name,
		TimeoutMs: timeout.Milliseconds()}, &res)
	var ce *control.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ce) && ce.Code == control.CodeTimeout:
		return h.failf(name, "could not free %d MiB for the domain within %s: %s", mib, timeout, ce.Message)
	case errors.As(err, &ce):
		h.warnf(name, "no tmem reservation of %d MiB (%s); starting anyway", mib, ce.Message)
		return 0
	case ctx.Err() != nil:
		return h.failf(name, "xen-tmemd did not answer the reservation of %d MiB within %s", mib, timeout+h.cfg.CallTimeout)
	}
	return h.failf(name, "reservation of %d MiB: %v", mib, err)
}

func (h *hook) attach(ctx context.Context, cl *control.Client, name string, c cowdDisk) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.CallTimeout)
	defer cancel()
	var info attachInfo
	return cl.Call(ctx, control.OpCowdAttach, &control.CowdAttachArgs{Domain: name, Disk: c.Disk, Base: c.Base,
		CowFile: c.Cow, Format: c.Format, NBDDevice: c.NBD}, &info)
}

func (h *hook) detach(ctx context.Context, cl *control.Client, name, disk string) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.CallTimeout)
	defer cancel()
	return cl.Call(ctx, control.OpCowdDetach, &control.CowdDetachArgs{Domain: name, Disk: disk}, nil)
}

// started applies weight and compress now that the domain has an id. It
// never fails: a non-zero exit here makes libvirt destroy the domain.
func (h *hook) started(ctx context.Context, name string, stdin io.Reader) int {
	d, err := parseDomain(stdin, h.cfg.Namespace)
	if err != nil {
		h.warnf(name, "tmem settings not applied: %v", err)
		return 0
	}
	name = d.Name
	if d.SettingsErr != nil {
		h.warnf(name, "ignoring the tmem settings: %v", d.SettingsErr)
		return 0
	}
	s := d.Settings
	if s.Weight == nil && s.Compress == nil {
		return 0
	}
	target := name
	if _, err := strconv.ParseUint(d.ID, 10, 16); err == nil {
		target = d.ID
	}
	cl, err := h.dial(ctx)
	if err != nil {
		h.warnf(name, "tmem settings not applied: %v", err)
		return 0
	}
	defer cl.Close()
	args := &control.SetArgs{DomainArgs: control.DomainArgs{Domain: target}, Weight: s.Weight, Compress: s.Compress}
	// The daemon learns of a new domain at its next tick: retry no-domain
	// for a while.
	deadline := time.Now().Add(h.cfg.SettleTimeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, h.cfg.CallTimeout)
		err = cl.Call(cctx, control.OpSet, args, nil)
		cancel()
		var ce *control.Error
		if err == nil || !errors.As(err, &ce) || ce.Code != control.CodeNoDomain || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err != nil {
		h.warnf(name, "tmem settings not applied: %v", err)
	}
	return 0
}

// release detaches the domain's cowd disks. libvirt ignores the exit
// status but logs stderr when it is non-zero, so failures exit 1.
func (h *hook) release(ctx context.Context, name string, stdin io.Reader) int {
	d, err := parseDomain(stdin, h.cfg.Namespace)
	if err != nil {
		return h.failf(name, "cowd disks not detached: %v", err)
	}
	name = d.Name
	if len(d.Cowd) == 0 {
		return 0
	}
	cl, err := h.dial(ctx)
	if err != nil {
		return h.failf(name, "cowd disks %s not detached: %v (xen-tmemd re-adopts them when it starts; then detach them with the cowd-detach op, see docs/operations.md)",
			diskList(d.Cowd), err)
	}
	defer cl.Close()
	code := 0
	for _, c := range d.Cowd {
		if err := h.detach(ctx, cl, name, c.Disk); err != nil {
			code = h.failf(name, "cowd disk %s not detached: %v", c.Disk, err)
		}
	}
	return code
}

func diskList(cs []cowdDisk) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Disk
	}
	return strings.Join(names, ", ")
}
