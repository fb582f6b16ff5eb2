//go:build race

package qcow2

// raceEnabled scales the randomised tests down under the race detector,
// which slows their byte-by-byte bookkeeping tenfold.
const raceEnabled = true
