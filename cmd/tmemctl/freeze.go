package main

import (
	"context"
	"flag"

	"github.com/xentmem/xentmem/internal/control"
)

var freezeHelp = cmdHelp{
	name:     "tmem-freeze",
	synopsis: "-a|DOMAIN",
	text: `Freezes the tmem client of a domain, or of all domains (-a): its puts of new
pages fail until tmem-thaw, so it cannot take more memory. Pages it holds
stay, and gets still work. Prints nothing, as xl does.

Unlike xl 4.1–4.7, which exit 0 when Xen refuses, tmemctl exits non-zero:
a domain that never used tmem has no client to freeze (exit 1).
`,
	examples: `tmemctl tmem-freeze -a
tmemctl tmem-freeze web1`,
}

func runFreeze(ctx context.Context, e *env, args []string) error {
	return runDomainOp(ctx, e, freezeHelp, control.OpFreeze, args)
}

// runDomainOp is the body of the xl commands that take only [-a|DOMAIN].
func runDomainOp(ctx context.Context, e *env, h cmdHelp, op string, args []string) error {
	_, err := domainOp(ctx, e, h, op, args, nil)
	return err
}

// domainOp parses [-a|DOMAIN] (and the flags extra adds), issues op and
// returns the backend for a follow-up.
func domainOp(ctx context.Context, e *env, h cmdHelp, op string, args []string, extra func(*flag.FlagSet)) (backend, error) {
	fs := newFlags(h.name)
	all := fs.Bool("a", false, "all domains")
	if extra != nil {
		extra(fs)
	}
	pos, err := e.parse(fs, h, args)
	if err != nil {
		return nil, err
	}
	t, err := parseTarget(*all, pos)
	if err != nil {
		return nil, err
	}
	be, err := e.backend(ctx)
	if err != nil {
		return nil, err
	}
	a := t.args()
	return be, be.Call(ctx, op, &a, nil)
}
