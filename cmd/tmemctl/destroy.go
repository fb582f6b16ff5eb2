package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/xentmem/xentmem/internal/control"
)

var destroyHelp = cmdHelp{
	name:     "tmem-destroy",
	synopsis: "[-q] -a|DOMAIN",
	text: `Sends tmem's DESTROY control operation (xm tmem-destroy; xl had it in 4.1
only). Despite the name, every Xen release with tmem (4.0–4.12) treats it
exactly like THAW: it clears the frozen flag and destroys nothing. tmemctl
says so on stderr after the call, naming the running Xen. A pool goes away
only when its own domain destroys it or when the domain dies.
`,
	examples: `tmemctl tmem-destroy web1`,
}

func runDestroy(ctx context.Context, e *env, args []string) error {
	var quiet *bool
	be, err := domainOp(ctx, e, destroyHelp, control.OpDestroy, args, func(fs *flag.FlagSet) {
		quiet = fs.Bool("q", false, "do not explain what Xen did")
	})
	if err != nil || *quiet {
		return err
	}
	res, err := fetchList(ctx, be, target{all: true}, false) // for the version
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "tmemctl tmem-destroy: note: Xen %s only thaws on DESTROY (as every release 4.0–4.12 does): nothing was destroyed\n", res.Version)
	return nil
}
