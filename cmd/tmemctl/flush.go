package main

import (
	"context"
	"fmt"

	"github.com/xentmem/xentmem/internal/control"
)

var flushHelp = cmdHelp{
	name:     "tmem-flush",
	synopsis: "-a [-p PAGES | --mib MIB] [-o text|json]",
	text: `Asks tmem to give memory back to Xen's heap (xm tmem-flush; xl has no such
command): it evicts ephemeral pages, of any domain, until PAGES pages (or MIB
MiB) are free in tmem's own free list, then releases that whole list. Without
-p or --mib it only releases the free list. Prints how many KiB were released:
it can be more than asked (the whole free list goes) or less (nothing left to
evict). Persistent pages are never flushed.

Xen flushes all domains only: a DOMAIN instead of -a is refused (exit 4).

Where tmemctl differs from xm: xm's -p never worked (its parser knew only
-a, so it always sent -1 = 0 pages), and the hypervisor reads the number as
KiB, not pages. tmemctl's -p counts 4 KiB pages and converts.
`,
	examples: `tmemctl tmem-flush -a --mib 256
tmemctl tmem-flush -a -p 1024 -o json`,
}

// maxFlushKiB is the most Xen's 32-bit KiB count takes (values within 3 of
// 2³² wrap to 0 pages inside Xen).
const maxFlushKiB = 1<<32 - 4

func runFlush(ctx context.Context, e *env, args []string) error {
	fs := newFlags(flushHelp.name)
	all := fs.Bool("a", false, "all domains (required: Xen has no per-domain flush)")
	var pages, mibs optValue
	fs.Var(&pages, "p", "flush until `PAGES` 4 KiB pages are free")
	fs.Var(&mibs, "mib", "flush until `MIB` MiB are free")
	output := fs.String("o", "text", "output `format`: text or json")
	pos, err := e.parse(fs, flushHelp, args)
	if err != nil {
		return err
	}
	if !*all && len(pos) == 0 {
		return usagef("give -a: Xen flushes all domains together")
	}
	t, err := parseTarget(*all, pos)
	if err != nil {
		return err
	}
	if err := checkFormat(*output, "text", "json"); err != nil {
		return err
	}
	var kib uint64
	switch {
	case pages.set && mibs.set:
		return usagef("give -p or --mib, not both")
	case pages.set:
		n, err := parseUint("-p", pages.s, maxFlushKiB/4)
		if err != nil {
			return err
		}
		kib = n * 4
	case mibs.set:
		n, err := parseUint("--mib", mibs.s, maxFlushKiB/1024)
		if err != nil {
			return err
		}
		kib = n * 1024
	}
	if !t.all {
		return &control.Error{Code: control.CodeUnsupported,
			Message: fmt.Sprintf("cannot flush domain %s alone: no Xen release has a per-domain tmem flush (use -a)", t.domain)}
	}
	be, err := e.backend(ctx)
	if err != nil {
		return err
	}
	var res flushResult
	if err := be.Call(ctx, control.OpFlush, &control.FlushArgs{KiB: kib}, &res); err != nil {
		return err
	}
	if *output == "json" {
		return writeJSON(e.stdout, res)
	}
	_, err = fmt.Fprintf(e.stdout, "released %d KiB to Xen's heap\n", res.FreedKiB)
	return err
}
