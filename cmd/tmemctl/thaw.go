package main

import (
	"context"

	"github.com/xentmem/xentmem/internal/control"
)

var thawHelp = cmdHelp{
	name:     "tmem-thaw",
	synopsis: "-a|DOMAIN",
	text: `Thaws the tmem client of a domain, or of all domains (-a): undoes tmem-freeze,
so its puts of new pages work again. Prints nothing, as xl does.

Unlike xl 4.1–4.7, which exit 0 when Xen refuses, tmemctl exits non-zero.
`,
	examples: `tmemctl tmem-thaw -a
tmemctl tmem-thaw 3`,
}

func runThaw(ctx context.Context, e *env, args []string) error {
	return runDomainOp(ctx, e, thawHelp, control.OpThaw, args)
}
