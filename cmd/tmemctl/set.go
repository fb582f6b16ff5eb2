package main

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/xentmem/xentmem/internal/control"
	"github.com/xentmem/xentmem/xenctl"
)

var setHelp = cmdHelp{
	name:     "tmem-set",
	synopsis: "-a|DOMAIN [-w WEIGHT] [-c CAP] [-p 0|1]",
	text: `Sets the tmem weight, cap or compression of a domain, or of all (-a). At
least one of -w, -c and -p is required. Prints nothing, as xl does.

Where tmemctl differs from xl, on purpose:
  - -p takes 0 (off) or 1 (on). xl 4.8+ stores N&1, so "-p 2" switched
    compression off; tmemctl refuses anything but 0 and 1 (exit 2).
  - Numbers must be whole decimal numbers that fit in 32 bits (exit 2);
    xl took whatever strtol made of them.
  - The cap exists in Xen 4.0–4.7 only; on 4.8+ tmemctl exits 4 and says
    so. It is set first, so a refused cap changes nothing else.
  - With -a on Xen 4.8+, xl read the generic "all clients" record and
    wrote it to every client, so "tmem-set -a -w N" also switched
    compression off everywhere (and -p reset every weight to 0). tmemctl
    sets each client in turn and changes only what was asked.
  - xl 4.1–4.7 exit 0 when Xen refuses; 4.8+ exit by the last option
    only. tmemctl stops at the first failure and exits non-zero.
  - -a with no tmem client at all is not an error: tmemctl says so.
`,
	examples: `tmemctl tmem-set web1 -w 20 -p 1
tmemctl tmem-set -a -p 0`,
}

// optValue is a string option that remembers whether it was given.
type optValue struct {
	s   string
	set bool
}

func (o *optValue) String() string     { return o.s }
func (o *optValue) Set(s string) error { o.s, o.set = s, true; return nil }

func runSet(ctx context.Context, e *env, args []string) error {
	fs := newFlags(setHelp.name)
	all := fs.Bool("a", false, "all domains")
	var w, c, p optValue
	fs.Var(&w, "w", "tmem `weight` (0–4294967295)")
	fs.Var(&c, "c", "tmem `cap` (0–4294967295; Xen 4.0–4.7 only, never enforced by Xen)")
	fs.Var(&p, "p", "compression: `0|1` (1 on, 0 off)")
	pos, err := e.parse(fs, setHelp, args)
	if err != nil {
		return err
	}
	t, err := parseTarget(*all, pos)
	if err != nil {
		return err
	}
	if !w.set && !c.set && !p.set {
		return usagef("no value to set: give -w, -c or -p")
	}
	// One change per call, the cap first (the only one a Xen may lack).
	var changes []control.SetArgs
	if c.set {
		v, err := parseUint("-c", c.s, math.MaxUint32)
		if err != nil {
			return err
		}
		x := uint32(v)
		changes = append(changes, control.SetArgs{Cap: &x})
	}
	if w.set {
		v, err := parseUint("-w", w.s, math.MaxUint32)
		if err != nil {
			return err
		}
		x := uint32(v)
		changes = append(changes, control.SetArgs{Weight: &x})
	}
	if p.set {
		if p.s != "0" && p.s != "1" {
			return usagef("-p %q: want 1 (compression on) or 0 (off)", p.s)
		}
		on := p.s == "1"
		changes = append(changes, control.SetArgs{Compress: &on})
	}
	be, err := e.backend(ctx)
	if err != nil {
		return err
	}
	targets := []control.DomainArgs{t.args()}
	if t.all {
		if targets, err = setTargets(ctx, be); err != nil {
			return err
		}
		if len(targets) == 0 {
			fmt.Fprintf(e.stderr, "tmemctl tmem-set: no domain is a tmem client yet: nothing to set\n")
			return nil
		}
	}
	for _, tg := range targets {
		for _, ch := range changes {
			ch.DomainArgs = tg
			if err := be.Call(ctx, control.OpSet, &ch, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// setTargets returns what "-a" means: all clients at once up to Xen 4.7,
// each client in turn on 4.8+ (see setHelp), none when there are no
// clients.
func setTargets(ctx context.Context, be backend) ([]control.DomainArgs, error) {
	res, err := fetchList(ctx, be, target{all: true}, false)
	if err != nil {
		return nil, err
	}
	l, err := xenctl.ParseList([]byte(res.Text))
	if err != nil {
		return nil, err
	}
	if len(l.Clients) == 0 {
		return nil, nil
	}
	v, err := xenctl.ParseVersion(res.Version)
	if err != nil {
		return nil, err
	}
	if xenctl.GenerationOf(v) < xenctl.GenC {
		return []control.DomainArgs{{All: true}}, nil
	}
	out := make([]control.DomainArgs, 0, len(l.Clients))
	for _, c := range l.Clients {
		out = append(out, control.DomainArgs{Domain: strconv.Itoa(int(c.ID))})
	}
	return out, nil
}
