package main

import (
	"context"
	"path/filepath"

	"github.com/xentmem/xentmem/internal/control"
)

var saveHelp = cmdHelp{
	name:     "tmem-save",
	synopsis: "DOMAIN FILE",
	text: `Saves DOMAIN's tmem state to FILE: weight, cap and compression, every pool
(ephemeral pools are recorded empty: Xen may drop their pages at any time
anyway) and every page of its persistent pools. The client is frozen while
its pages are read and thawed afterwards. FILE must not exist; it is written
by whoever runs the operation (xen-tmemd, when it is in use, on its host).
The format is xentmem's own, read back by tmem-restore.
`,
	examples: `tmemctl tmem-save web1 /var/lib/xen/web1.tmem`,
}

func runSave(ctx context.Context, e *env, args []string) error {
	return saveRestore(ctx, e, saveHelp, control.OpSave, args)
}

// saveRestore is the body of tmem-save and tmem-restore.
func saveRestore(ctx context.Context, e *env, h cmdHelp, op string, args []string) error {
	fs := newFlags(h.name)
	pos, err := e.parse(fs, h, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) < 2:
		return usagef("give DOMAIN and FILE")
	case len(pos) > 2:
		return usagef("unexpected argument %q", pos[2])
	}
	// The daemon runs elsewhere: it needs an absolute path.
	file, err := filepath.Abs(pos[1])
	if err != nil {
		return err
	}
	be, err := e.backend(ctx)
	if err != nil {
		return err
	}
	return be.Call(ctx, op, &control.SaveArgs{Domain: pos[0], File: file}, nil)
}
