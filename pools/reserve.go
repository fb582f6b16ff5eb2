package pools

import (
	"fmt"
	"slices"
	"time"
)

// ReserveState is the answer a [Reservation] has reached.
type ReserveState uint8

const (
	ReservePending ReserveState = iota // still flushing or waiting
	ReserveDone                        // the memory is free
	ReserveFailed                      // timed out, impossible, or released early
)

// String returns "pending", "done" or "failed".
func (s ReserveState) String() string {
	switch s {
	case ReservePending:
		return "pending"
	case ReserveDone:
		return "done"
	case ReserveFailed:
		return "failed"
	}
	return fmt.Sprintf("ReserveState(%d)", uint8(s))
}

// Reservation is a request to make NeedKiB available for a domain about to
// start. A [Reserver] (or a [Policy]) answers it: read State and Reason
// after each Step.
type Reservation struct {
	For      string // the domain, by name or id; for messages
	NeedKiB  uint64
	Created  time.Time
	Deadline time.Time

	state      ReserveState
	reason     string
	answered   time.Time
	released   bool
	flushes    int
	flushedKiB uint64
	lastAvail  uint64 // available memory at the previous step
	measured   bool   // lastAvail is set
}

// State returns the current answer.
func (r *Reservation) State() ReserveState { return r.state }

// Reason explains a Done or Failed answer, or what a Pending one waits for.
func (r *Reservation) Reason() string { return r.reason }

// Answered returns the snapshot time at which the answer became Done or
// Failed; zero while pending.
func (r *Reservation) Answered() time.Time { return r.answered }

// Flushes returns how many flushes were asked for while the reservation
// was pending, and their total KiB.
func (r *Reservation) Flushes() (n int, kib uint64) { return r.flushes, r.flushedKiB }

// String describes the reservation and its answer.
func (r *Reservation) String() string {
	s := fmt.Sprintf("reservation of %s for %s: %v", mib(r.NeedKiB), r.For, r.state)
	if r.reason != "" {
		s += " (" + r.reason + ")"
	}
	return s
}

func (r *Reservation) answer(now time.Time, st ReserveState, reason string) {
	r.state, r.reason, r.answered = st, reason, now
}

// held reports whether a done reservation still keeps its memory promised.
func (r *Reservation) held() bool { return r.state == ReserveDone && !r.released }

// Reserver answers pre-start reservations the way xend did before a domain
// start (xen-tmem-abi.md §9.2): freeze every tmem client so guests stop
// adding pages, flush the missing KiB, check the next snapshot, and thaw
// once every reservation is answered. Xen's allocator cannot take 2 MiB
// and larger chunks from tmem (§10.3), so a large domain needs this before
// it is built.
//
// The caller loops: [Reserver.Step] with a fresh snapshot, execute the
// actions, take the next snapshot. Several reservations may be pending:
// their needs add up, in the order they were made. A Reserver is not safe
// for concurrent use.
type Reserver struct {
	cfg   ReserveConfig
	queue []*Reservation // pending and held reservations, oldest first
	// frozen reports that the Reserver froze all clients and has not
	// thawed them yet; refreeze lists (sorted) the clients that were
	// already frozen then, to freeze again after the thaw.
	frozen   bool
	refreeze []uint16
}

// NewReserver returns a Reserver. A nil cfg means the defaults.
func NewReserver(cfg *ReserveConfig) (*Reserver, error) {
	var c ReserveConfig
	if cfg != nil {
		c = *cfg
	}
	c, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Reserver{cfg: c}, nil
}

// Reserve registers a request for needKiB of available memory (free minus
// outstanding claims) by deadline, on the clock of the snapshots. The
// answer comes with the next Step, except that a zero need is done and a
// deadline not after now has failed at once.
func (rv *Reserver) Reserve(now time.Time, who string, needKiB uint64, deadline time.Time) *Reservation {
	r := &Reservation{For: who, NeedKiB: needKiB, Created: now, Deadline: deadline}
	switch {
	case needKiB == 0:
		r.answer(now, ReserveDone, "nothing to reserve")
		r.released = true
	case !deadline.After(now):
		r.answer(now, ReserveFailed, "deadline already passed")
	default:
		r.reason = "waiting for a snapshot"
		rv.queue = append(rv.queue, r)
	}
	return r
}

// Release ends a reservation: the domain has been built (or will not be).
// A pending reservation fails; a done one stops holding tmem frozen. The
// thaw, if due, comes with the next Step.
func (rv *Reserver) Release(now time.Time, r *Reservation) {
	if r.state == ReservePending {
		r.answer(now, ReserveFailed, "released before the memory was free")
	}
	r.released = true
}

// Frozen reports whether the Reserver has frozen all clients and not yet
// thawed them.
func (rv *Reserver) Frozen() bool { return rv.frozen }

// Active returns the number of pending and held reservations.
func (rv *Reserver) Active() int { return len(rv.queue) }

// Step advances every reservation against snap and returns the actions to
// execute now.
func (rv *Reserver) Step(snap Snapshot) []Action {
	acts := rv.step(&snap, nil, nil)
	for i := range acts {
		acts[i].DryRun = rv.cfg.DryRun
	}
	return acts
}

// step does the work of Step. keepFrozen, when not nil, names further
// clients to freeze again after the final thaw (those a Policy froze).
func (rv *Reserver) step(s *Snapshot, keepFrozen func(uint16) bool, acts []Action) []Action {
	if len(rv.queue) == 0 && !rv.frozen {
		return acts
	}
	now := s.Time
	avail := s.Host.AvailKiB()
	freeable := s.Host.FreeableKiB

	// Holds expire first, so their memory stops counting.
	for _, r := range rv.queue {
		if r.held() && (rv.cfg.HoldFor <= 0 || !now.Before(r.answered.Add(rv.cfg.HoldFor))) {
			r.released = true
		}
	}
	var cum uint64 // memory promised so far, in queue order
	var waiting []*Reservation
	for _, r := range rv.queue {
		if r.held() {
			cum += r.NeedKiB
			continue
		}
		if r.state != ReservePending {
			continue
		}
		earlier := cum
		cum += r.NeedKiB
		switch {
		case avail >= cum:
			reason := fmt.Sprintf("%s available, %s needed", mib(avail), mib(r.NeedKiB))
			if earlier > 0 {
				reason += fmt.Sprintf(" after %s for earlier reservations", mib(earlier))
			}
			r.answer(now, ReserveDone, reason)
			r.released = rv.cfg.HoldFor <= 0
		case !now.Before(r.Deadline):
			r.answer(now, ReserveFailed, fmt.Sprintf("timed out after %v: %s available, %s needed, %s freeable in tmem",
				now.Sub(r.Created), mib(avail), mib(cum), mib(freeable)))
			cum -= r.NeedKiB
		case freeable == 0 && r.measured && avail <= r.lastAvail:
			r.answer(now, ReserveFailed, fmt.Sprintf("tmem has nothing left to flush and free memory is not growing: %s available, %s needed",
				mib(avail), mib(cum)))
			cum -= r.NeedKiB
		default:
			r.lastAvail, r.measured = avail, true
			r.reason = fmt.Sprintf("%s available, %s needed", mib(avail), mib(cum))
			waiting = append(waiting, r)
		}
	}

	if missing := subSat(cum, avail); missing > 0 && len(waiting) > 0 {
		who := waiting[len(waiting)-1].For
		if len(waiting) > 1 {
			who = fmt.Sprintf("%d domains", len(waiting))
		}
		kib := min(roundUpMiB(missing), freeable)
		if kib > 0 && !rv.frozen {
			rv.frozen = true
			rv.refreeze = rv.refreeze[:0]
			for i := range s.Clients {
				if s.Clients[i].Frozen {
					rv.refreeze = append(rv.refreeze, s.Clients[i].DomID)
				}
			}
			slices.Sort(rv.refreeze)
			acts = append(acts, Action{Kind: ActionFreeze, DomID: AllClients,
				Reason: fmt.Sprintf("reserving memory for %s: stop tmem from growing while flushing", who)})
		}
		if kib > 0 {
			for _, r := range waiting {
				r.flushes++
				r.flushedKiB += kib
			}
			acts = append(acts, Action{Kind: ActionFlush, DomID: AllClients, KiB: kib,
				Reason: fmt.Sprintf("reserving memory for %s: %s available, %s needed, %s freeable",
					who, mib(avail), mib(cum), mib(freeable))})
		}
	}

	rv.queue = slices.DeleteFunc(rv.queue, func(r *Reservation) bool {
		return r.state != ReservePending && !r.held()
	})
	if rv.frozen && len(rv.queue) == 0 {
		rv.frozen = false
		acts = append(acts, Action{Kind: ActionThaw, DomID: AllClients,
			Reason: "reservations answered: tmem may grow again"})
		for i := range s.Clients {
			c := &s.Clients[i]
			_, was := slices.BinarySearch(rv.refreeze, c.DomID)
			if was || (keepFrozen != nil && keepFrozen(c.DomID)) {
				acts = append(acts, Action{Kind: ActionFreeze, DomID: c.DomID, Name: c.Name,
					Reason: "was frozen before the reservation"})
			}
		}
	}
	return acts
}
