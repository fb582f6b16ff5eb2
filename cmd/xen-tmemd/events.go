package main

import (
	"sync"
	"time"

	"github.com/xentmem/xentmem/internal/control"
)

// bus fans events out to control-socket subscribers. Slow subscribers lose
// events rather than stall the daemon. It is safe for concurrent use.
type bus struct {
	mu      sync.Mutex // guards subs, dropped
	subs    map[chan control.Event]struct{}
	now     func() time.Time
	dropped uint64
}

func newBus(now func() time.Time) *bus {
	return &bus{subs: map[chan control.Event]struct{}{}, now: now}
}

// publish sends ev to every subscriber that has room.
func (b *bus) publish(ev control.Event) {
	if ev.Time.IsZero() {
		ev.Time = b.now()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- ev:
		default:
			b.dropped++
		}
	}
}

// subscribe implements control.Subscriber.
func (b *bus) subscribe() (<-chan control.Event, func()) {
	ch := make(chan control.Event, 256)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, ch)
			b.mu.Unlock()
		})
	}
}
