package main

import (
	"context"
	"io"

	"github.com/xentmem/xentmem/internal/control"
)

var listHelp = cmdHelp{
	name:     "tmem-list",
	synopsis: "[-l] [-o text|table|json] -a|DOMAIN",
	text: `Lists the tmem clients (domains) and their pools, for one domain or all (-a).

The default output is exactly xl's: the raw LIST text Xen produced, followed
by one empty line, short form unless -l is given. Existing scripts that parse
it (xen-tmem-list-parse and friends) keep working.

-o table prints readable tables instead: per domain the name, pools, pages and
MiB held (ephemeral and persistent), puts, gets, hits and hit ratio, weight,
cap, compression and the frozen flag; then one line per pool. -o json prints
the documented schema of docs/tmemctl-json.md. Both read the long form (-l is
implied) and show the very numbers of the raw LIST.

DOMAIN is a name (from xen-tmemd: libvirt or the simulator), an id, domN or
Domain-0. When both -a and a domain are given, -a wins, as in xl.
`,
	examples: `tmemctl tmem-list -l -a
tmemctl tmem-list -a -o table
tmemctl tmem-list -o json web1 | jq '.domains[0].pools'`,
}

// runList is tmem-list.
func runList(ctx context.Context, e *env, args []string) error {
	fs := newFlags(listHelp.name)
	all := fs.Bool("a", false, "all domains")
	long := fs.Bool("l", false, "long form: with statistics")
	output := fs.String("o", "text", "output `format`: text (xl's), table or json")
	pos, err := e.parse(fs, listHelp, args)
	if err != nil {
		return err
	}
	t, err := parseTarget(*all, pos)
	if err != nil {
		return err
	}
	if err := checkFormat(*output, "text", "table", "json"); err != nil {
		return err
	}
	if *output != "text" {
		*long = true
	}
	be, err := e.backend(ctx)
	if err != nil {
		return err
	}
	res, err := fetchList(ctx, be, t, *long)
	if err != nil {
		return err
	}
	switch *output {
	case "table":
		v, err := newView(res)
		if err != nil {
			return err
		}
		return writeListTable(e.stdout, v)
	case "json":
		v, err := newView(res)
		if err != nil {
			return err
		}
		return writeJSON(e.stdout, listJSONOf(v))
	}
	return writeListText(e.stdout, res)
}

// fetchList issues "list".
func fetchList(ctx context.Context, be backend, t target, long bool) (*listResult, error) {
	var res listResult
	err := be.Call(ctx, control.OpList, &control.ListArgs{DomainArgs: t.args(), Long: long}, &res)
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// writeListText prints what xl prints: printf("%s\n", buf).
func writeListText(w io.Writer, res *listResult) error {
	_, err := io.WriteString(w, res.Text+"\n")
	return err
}
