package main

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// FuzzCommandLine feeds arbitrary command lines (arguments separated by
// NUL) to tmemctl with a backend that cannot be reached: nothing panics,
// the exit status is a documented one, and a usage error is one line.
func FuzzCommandLine(f *testing.F) {
	for _, s := range []string{
		"tmem-list\x00-a", "tmem-list\x003\x00-l", "tmem-set\x00-a\x00-w\x007\x00-p\x001",
		"tmem-shared-auth\x001\x00-u\x00a\x00-A\x001", "tmem-flush\x00-a\x00--mib\x0012",
		"tmem-top\x00-b\x00-n\x001", "--socket\x00/x\x00tmem-freeable", "tmem-list\x00--\x00-a",
		"help\x00tmem-top", "tmem-pool-create\x001\x00--ephemeral\x00--shared\x00--uuid\x00f",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, "\x00")
		var out, errb strings.Builder
		e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, now: time.Now,
			sleep: func(context.Context, time.Duration) error { return context.Canceled },
			open: func(context.Context, *env) (backend, error) {
				return nil, &reachError{Code: exitUnreachable, Msg: "no backend", Err: errors.New("x")}
			}}
		code := e.main(context.Background(), append([]string{"tmemctl"}, args...))
		if code < exitOK || code > exitDenied {
			t.Fatalf("%q: exit %d", args, code)
		}
		if code == exitUsage && len(args) > 0 && args[0] != "" && strings.Count(errb.String(), "\n") != 1 {
			t.Fatalf("%q: usage error in %d lines: %q", args, strings.Count(errb.String(), "\n"), errb.String())
		}
	})
}

// FuzzTopFrame builds tmem-top frames from two arbitrary LIST texts: no
// panic, and no negative or non-finite rate.
func FuzzTopFrame(f *testing.F) {
	f.Add(listT0, listT1)
	f.Add(listT1, listT2)
	f.Add(listT2, listT0)
	f.Add("C=CI:1,ww:0\nP=CI:1,PI:0,PT:EP,U0:0,U1:0,Pc:-5,gs:9,gt:3\n", "P=CI:1,PI:0,PT:ES,U0:ff,U1:1,Pc:1\n")
	f.Fuzz(func(t *testing.T, a, b string) {
		t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		va, err := newView(&listResult{Text: a, Version: "4.12.4", Time: t0})
		if err != nil {
			return
		}
		vb, err := newView(&listResult{Text: b, Version: "4.12.4", Time: t0.Add(time.Second)})
		if err != nil {
			return
		}
		for k := range sortKeys {
			fr := buildFrame(&sample{view: va}, &sample{view: vb}, k)
			for _, r := range fr.Rows {
				for _, x := range []float64{r.PutsPS, r.GetsPS, r.HitsPS, r.EvictPS, fr.EvictPS, fr.OpsPS} {
					if x < 0 || math.IsNaN(x) || math.IsInf(x, 0) {
						t.Fatalf("bad rate %v in %+v", x, r)
					}
				}
				if r.HitRatio != nil && (*r.HitRatio < 0 || math.IsNaN(*r.HitRatio)) {
					t.Fatalf("bad hit ratio %v", *r.HitRatio)
				}
			}
			frameLines(fr)
			topJSONOf(fr)
		}
		listJSONOf(vb)
		writeListTable(&strings.Builder{}, vb)
	})
}
