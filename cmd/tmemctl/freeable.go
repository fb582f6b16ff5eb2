package main

import (
	"context"
	"fmt"

	"github.com/xentmem/xentmem/internal/control"
)

var freeableHelp = cmdHelp{
	name:     "tmem-freeable",
	synopsis: "[-o text|json]",
	text: `Prints the MiB tmem could give back to Xen (its free list, its ephemeral pages
and their metadata): one number and a newline, as xl prints it.

Where tmemctl differs from xl, on purpose:
  - xl 4.8–4.12 always print 0 (libxl returns 0 instead of the value);
    tmemctl prints the real number.
  - On failure xl prints -3 and exits 0; tmemctl prints an error and exits
    non-zero (4 on a Xen without tmem).
`,
	examples: `tmemctl tmem-freeable
tmemctl tmem-freeable -o json`,
}

func runFreeable(ctx context.Context, e *env, args []string) error {
	fs := newFlags(freeableHelp.name)
	output := fs.String("o", "text", "output `format`: text (the number, as xl) or json")
	pos, err := e.parse(fs, freeableHelp, args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	if err := checkFormat(*output, "text", "json"); err != nil {
		return err
	}
	be, err := e.backend(ctx)
	if err != nil {
		return err
	}
	var res freeableResult
	if err := be.Call(ctx, control.OpFreeable, nil, &res); err != nil {
		return err
	}
	if *output == "json" {
		return writeJSON(e.stdout, res)
	}
	_, err = fmt.Fprintf(e.stdout, "%d\n", res.FreeableMiB)
	return err
}
