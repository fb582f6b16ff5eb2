package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

var topHelp = cmdHelp{
	name:     "tmem-top",
	synopsis: "[-d SECS] [-s pages|hits|puts|name] [-n N] [-b [-o table|json]]",
	text: `A live view of tmem, refreshed every second like xentop. One line per domain:
its memory, tmem pools, ephemeral and persistent pages, the MiB they hold,
the hit ratio, puts, gets and hits per second, evictions per second, weight,
compression and whether it is frozen. Domains that are not tmem clients show
"-". The header shows host memory, what tmem could free, and host-wide
evictions and tmem operations per second.

Rates are over the last interval; the first screen has none, and its hit
ratio is over the pools' lives. EVICT/s is derived from the pool counters
(pages that left a private ephemeral pool other than by a get, a flush or an
overwrite); "<" marks an upper bound, when the guest flushed whole objects.

Keys: q quit, s next sort key (pages, hits, puts, name), d set the delay,
Ctrl-C quit. The sorted column carries a '*'.

-b (batch) prints plain tables, one per refresh and a blank line between,
for scripts; -o json prints one JSON object per line instead
(docs/tmemctl-json.md). -n stops after N refreshes (0: never).
`,
	examples: `tmemctl tmem-top
tmemctl tmem-top -b -n 3 -d 2 -s hits
tmemctl --socket .run/control.sock tmem-top -b -n 5 -o json | jq .domains[0]`,
}

// topOptions are tmem-top's settings.
type topOptions struct {
	delay time.Duration
	sort  sortKey
	n     int // refreshes; 0 = until quit
	json  bool
}

func runTop(ctx context.Context, e *env, args []string) error {
	fs := newFlags(topHelp.name)
	delay := fs.String("d", "1", "delay between refreshes in `SECS` (at least 0.1)")
	sortBy := fs.String("s", "pages", "sort `key`: pages, hits, puts or name")
	n := fs.Int("n", 0, "stop after `N` refreshes (0: never)")
	batch := fs.Bool("b", false, "batch mode: plain output for scripts")
	output := fs.String("o", "table", "batch output `format`: table or json")
	pos, err := e.parse(fs, topHelp, args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	o := topOptions{n: *n, json: *output == "json"}
	if o.delay, err = parseDelay(*delay); err != nil {
		return err
	}
	var ok bool
	if o.sort, ok = parseSortKey(*sortBy); !ok {
		return usagef("-s %q: want pages, hits, puts or name", *sortBy)
	}
	if *n < 0 {
		return usagef("-n %d: want 0 or more", *n)
	}
	if err := checkFormat(*output, "table", "json"); err != nil {
		return err
	}
	if o.json && !*batch {
		return usagef("-o json needs batch mode (-b)")
	}
	var tty *terminal
	if !*batch {
		if tty = openTerminal(e.stdin, e.stdout); tty == nil {
			return usagef("the full-screen view needs a terminal; use -b for batch mode")
		}
	}
	be, err := e.backend(ctx)
	if err != nil {
		return err
	}
	// The first sample is taken before the screen is set up, so that a Xen
	// without tmem gives a plain error and exit status.
	first, err := fetchSample(ctx, be)
	if err != nil {
		return err
	}
	if *batch {
		return topBatch(ctx, e, be, first, o)
	}
	return topScreen(ctx, tty, be, first, o)
}

// parseDelay reads -d: seconds, possibly fractional.
func parseDelay(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0.1 || f > 86400 {
		return 0, usagef("-d %q: want seconds from 0.1 to 86400", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// topBatch prints one frame per refresh.
func topBatch(ctx context.Context, e *env, be backend, cur *sample, o topOptions) error {
	var prev *sample
	for i := 0; ; i++ {
		f := buildFrame(prev, cur, o.sort)
		if err := writeFrame(e, f, o.json, i > 0); err != nil {
			return err
		}
		if o.n > 0 && i+1 >= o.n {
			return nil
		}
		if err := e.sleep(ctx, o.delay); err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
		next, err := fetchSample(ctx, be)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		prev, cur = cur, next
	}
}

func writeFrame(e *env, f *topFrame, asJSON, blank bool) error {
	if asJSON {
		b, err := json.Marshal(topJSONOf(f))
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", b)
		return err
	}
	if blank {
		fmt.Fprintln(e.stdout)
	}
	for _, l := range frameLines(f) {
		if _, err := fmt.Fprintln(e.stdout, l); err != nil {
			return err
		}
	}
	return nil
}
