package xensim

import (
	"strconv"
	"time"
)

// The cycle counters of Xen 4.0–4.3 (TMEM_PERF, the T= trailer of LIST and
// the per-client Tc). Cycles are derived from the injected clock at the
// configured cpu_khz, so a clock that does not move gives zero cycles.

// perf counter indices, in the T= line's order.
const (
	perfSuccGet = iota
	perfSuccPut
	perfNonSuccGet
	perfNonSuccPut
	perfFlush
	perfFlushObj
	perfCopy
	perfCompress
	perfDecompress
	perfCount
)

var perfTags = [perfCount]string{"G", "P", "g", "p", "F", "O", "C", "c", "d"}

type cycCounter struct {
	count, sum uint64
	max, min   int32
}

type perfCounters struct {
	c [perfCount]cycCounter
}

func (p *perfCounters) init() {
	for i := range p.c {
		p.c[i].min = 0x7fffffff
	}
}

// add records one sample and returns it.
func (p *perfCounters) add(i int, cycles uint64) uint64 {
	c := &p.c[i]
	c.sum += cycles
	if int32(cycles) > c.max {
		c.max = int32(cycles)
	}
	if int32(cycles) < c.min {
		c.min = int32(cycles)
	}
	c.count++
	return cycles
}

// appendTo appends "Gn:…,Gt:…,Gx:…,Gm:…," for every counter.
func (p *perfCounters) appendTo(b []byte) []byte {
	for i, c := range p.c {
		tag := perfTags[i]
		b = append(b, tag+"n:"...)
		b = strconv.AppendUint(b, c.count, 10)
		b = append(b, ","+tag+"t:"...)
		b = strconv.AppendUint(b, c.sum, 10)
		b = append(b, ","+tag+"x:"...)
		b = strconv.AppendInt(b, int64(c.max), 10)
		b = append(b, ","+tag+"m:"...)
		b = strconv.AppendInt(b, int64(c.min), 10)
		b = append(b, ',')
	}
	return b
}

// cycles converts an elapsed time into CPU cycles at the configured speed.
func (s *Sim) cycles(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64(d.Nanoseconds()) * uint64(s.cfg.CPUKHz) / 1e6
}

// perfOn reports whether the release has the cycle counters (4.0–4.3).
func (s *Sim) perfOn() bool { return !s.rel.atLeast(4, 4) }

func timeSince(now, start int64) time.Duration { return time.Duration(now - start) }
