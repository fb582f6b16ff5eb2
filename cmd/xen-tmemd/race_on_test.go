//go:build race

package main

// raceEnabled reports whether the race detector is on: it slows the
// simulator tenfold, so the policy evaluation runs in its own pass without it
// (`make test` does both).
const raceEnabled = true
