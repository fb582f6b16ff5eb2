package main

import (
	"context"
	"fmt"

	"github.com/xentmem/xentmem/internal/control"
	"github.com/xentmem/xentmem/xenctl"
)

var poolCreateHelp = cmdHelp{
	name:     "tmem-pool-create",
	synopsis: "DOMAIN --ephemeral|--persistent [--shared --uuid UUID] [-o text|json]",
	text: `Creates a tmem pool in DOMAIN's first free slot, as the restore path does
(SET_POOLS on Xen 4.9+, RESTORE_NEW before), and prints its pool id. An
ephemeral pool holds pages Xen may evict (cleancache); a persistent one keeps
them (frontswap). A shared pool must be ephemeral and needs the uuid guests
use; on Xen 4.9+ (or with tmem_shared_auth) authorise it first with
tmem-shared-auth.

Before Xen 4.9 the domain must already be a tmem client.
`,
	examples: `tmemctl tmem-pool-create web1 --ephemeral
tmemctl tmem-pool-create web1 --ephemeral --shared --uuid 00112233-4455-6677-8899-aabbccddeeff`,
}

func runPoolCreate(ctx context.Context, e *env, args []string) error {
	fs := newFlags(poolCreateHelp.name)
	eph := fs.Bool("ephemeral", false, "an ephemeral pool (Xen may evict its pages)")
	pers := fs.Bool("persistent", false, "a persistent pool")
	shared := fs.Bool("shared", false, "a shared pool (ephemeral only; needs --uuid)")
	uuid := fs.String("uuid", "", "the shared pool's `uuid`")
	output := fs.String("o", "text", "output `format`: text (the pool id) or json")
	pos, err := e.parse(fs, poolCreateHelp, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return usagef("give the DOMAIN")
	case len(pos) > 1:
		return usagef("unexpected argument %q", pos[1])
	case *eph == *pers:
		return usagef("give exactly one of --ephemeral and --persistent")
	case *shared && *pers:
		return usagef("a shared pool must be ephemeral")
	case *shared && *uuid == "":
		return usagef("a shared pool needs --uuid")
	case !*shared && *uuid != "":
		return usagef("--uuid is for shared pools (add --shared)")
	}
	if err := checkFormat(*output, "text", "json"); err != nil {
		return err
	}
	if *shared {
		if _, err := xenctl.ParseUUID(*uuid); err != nil {
			return uuidError(err)
		}
	}
	be, err := e.backend(ctx)
	if err != nil {
		return err
	}
	var res poolCreateResult
	a := control.PoolCreateArgs{Domain: pos[0], Persistent: *pers, Shared: *shared, UUID: *uuid}
	if err := be.Call(ctx, control.OpPoolCreate, &a, &res); err != nil {
		return err
	}
	if *output == "json" {
		err = writeJSON(e.stdout, res)
	} else {
		for _, id := range res.Pools {
			if _, err = fmt.Fprintf(e.stdout, "%d\n", id); err != nil {
				break
			}
		}
	}
	if err != nil || !*shared {
		return err
	}
	return checkShared(ctx, be, pos[0], *uuid, res.Pools)
}

// checkShared reports a shared pool Xen silently created private (the
// domain was not authorised for the uuid): xl would never know.
func checkShared(ctx context.Context, be backend, domain, uuid string, ids []int) error {
	lr, err := fetchList(ctx, be, target{domain: domain}, false)
	if err != nil {
		return err
	}
	l, err := xenctl.ParseList([]byte(lr.Text))
	if err != nil {
		return err
	}
	for _, id := range ids {
		for _, c := range l.Clients {
			for _, p := range c.Pools {
				if p.ID == int64(id) && !p.Shared() {
					return fmt.Errorf("Xen created pool %d as a private pool, not a shared one: domain %s is not authorised for uuid %s (see tmem-shared-auth)", id, domain, uuid)
				}
			}
		}
	}
	return nil
}
