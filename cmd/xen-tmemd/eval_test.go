package main

import (
	"flag"
	"os"
	"testing"

	"go.uber.org/zap"
)

var evalFull = flag.Bool("eval", false, "run the full policy evaluation of `make eval-policy` and print its table")

// TestEvalPolicy runs the seeded evaluation with and without the policy and
// checks the targets: at least 20% more tmem hits than no policy on the
// same memory, no low-watermark breach longer than two ticks, and the large
// domain start succeeds (it fails without a daemon). Without -eval it runs a
// shorter mix to keep `make test` quick.
func TestEvalPolicy(t *testing.T) {
	if testing.Short() && !*evalFull {
		t.Skip("-short")
	}
	if raceEnabled && !*evalFull {
		t.Skip("under -race the simulator is ten times slower: make test runs this test in a second pass without -race")
	}
	spec := defaultEvalSpec()
	if !*evalFull {
		spec.Ticks, spec.StartAt = 100, 80
	}
	log := zap.NewNop()
	pol, err := runEval(spec, true, log)
	if err != nil {
		t.Fatal(err)
	}
	none, err := runEval(spec, false, log)
	if err != nil {
		t.Fatal(err)
	}
	writeEval(os.Stdout, spec, pol, none)
	if pol.HitsBefore*10 < none.HitsBefore*12 {
		t.Errorf("before the large start (equal memory) the policy had %d tmem hits, no policy %d: want at least 1.2×", pol.HitsBefore, none.HitsBefore)
	}
	if pol.LongestBreach > 2 {
		t.Errorf("longest low-watermark breach %d ticks, want ≤ 2", pol.LongestBreach)
	}
	if !pol.StartOK {
		t.Errorf("large domain start with the policy: %s", pol.StartNote)
	}
	if none.StartOK {
		t.Logf("note: the large domain also started without a daemon (%s)", none.StartNote)
	}
}
