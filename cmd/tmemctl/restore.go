package main

import (
	"context"

	"github.com/xentmem/xentmem/internal/control"
)

var restoreHelp = cmdHelp{
	name:     "tmem-restore",
	synopsis: "DOMAIN FILE",
	text: `Restores DOMAIN's tmem state from FILE, written by tmem-save: creates its
pools in the saved slots, puts back the persistent pages, and sets weight,
cap (Xen 4.0–4.7) and compression. The domain must not be a tmem client yet
(a freshly created domain is not).

Xen charges the metadata of the restored persistent pages to the domain that
restores them, dom0: if dom0 runs at its maximum memory, the restore fails
with ENOMEM. Give dom0 room (dom0_mem=X,max:Y with Y > X).
`,
	examples: `tmemctl tmem-restore web1 /var/lib/xen/web1.tmem`,
}

func runRestore(ctx context.Context, e *env, args []string) error {
	return saveRestore(ctx, e, restoreHelp, control.OpRestore, args)
}
