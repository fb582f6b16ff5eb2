package main

import (
	"context"
	"fmt"
)

var domainsHelp = cmdHelp{
	name:     "_domains",
	synopsis: "",
	text: `Prints the names of the domains Xen knows, one per line (Domain-0 and domN
for domains without a name). The bash and zsh completions use it; it prints
nothing when neither Xen nor xen-tmemd can be reached.
`,
	examples: `tmemctl _domains`,
}

// runDomains is the hidden completion helper.
func runDomains(ctx context.Context, e *env, args []string) error {
	fs := newFlags(domainsHelp.name)
	pos, err := e.parse(fs, domainsHelp, args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	be, err := e.backend(ctx)
	if err != nil {
		return nil // completion must stay quiet
	}
	res, err := fetchList(ctx, be, target{all: true}, false)
	if err != nil {
		return nil
	}
	for _, d := range res.Domains {
		fmt.Fprintln(e.stdout, d.Name)
	}
	return nil
}
