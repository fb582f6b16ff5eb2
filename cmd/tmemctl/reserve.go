package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/xentmem/xentmem/internal/control"
)

var reserveHelp = cmdHelp{
	name:     "tmem-reserve",
	synopsis: "[--domain NAME] [--timeout DURATION] [-o text|json] MIB",
	text: `Asks xen-tmemd to make MIB MiB of host memory free for a domain about to
start: the daemon freezes tmem, flushes ephemeral pages until the memory is
free, and thaws when the domain has been built (its pre-start reservation, as
xend's domain builder did with freeze/flush/thaw). Prints the daemon's
answer. Needs xen-tmemd (exit 3 without it); exit 1 when the memory could
not be freed in time.
`,
	examples: `tmemctl tmem-reserve --domain web3 --timeout 1m 2048`,
}

func runReserve(ctx context.Context, e *env, args []string) error {
	fs := newFlags(reserveHelp.name)
	domain := fs.String("domain", "", "the domain about to start (for the daemon's log)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after `DURATION`")
	output := fs.String("o", "text", "output `format`: text or json")
	pos, err := e.parse(fs, reserveHelp, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return usagef("give the MiB to reserve")
	case len(pos) > 1:
		return usagef("unexpected argument %q", pos[1])
	}
	if err := checkFormat(*output, "text", "json"); err != nil {
		return err
	}
	mib, err := strconv.ParseUint(pos[0], 10, 64)
	if err != nil || mib == 0 || mib > 1<<40 {
		return usagef("MIB %q: want a whole number of MiB, at least 1", pos[0])
	}
	if *timeout <= 0 {
		return usagef("--timeout %s: want a positive duration", *timeout)
	}
	be, err := e.backend(ctx)
	if err != nil {
		return err
	}
	if !be.Daemon() {
		return &reachError{Code: exitUnreachable, Err: control.ErrNoDaemon,
			Msg: "reservations are made by xen-tmemd, and it is not running (start it with 'systemctl start xen-tmemd', or 'make run' for the simulator)"}
	}
	var res reserveResult
	// The daemon answers within its timeout; allow for the round trip.
	cctx, cancel := context.WithTimeout(ctx, *timeout+5*time.Second)
	defer cancel()
	a := control.ReserveArgs{MiB: mib, Domain: *domain, TimeoutMs: timeout.Milliseconds()}
	if err := be.Call(cctx, control.OpReserve, &a, &res); err != nil {
		return err
	}
	if *output == "json" {
		return writeJSON(e.stdout, res)
	}
	_, err = fmt.Fprintf(e.stdout, "reserved %d MiB: %s (flushed %d KiB)\n", mib, res.Reason, res.FlushedKiB)
	return err
}
