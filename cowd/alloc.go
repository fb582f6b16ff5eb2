package cowd

// allocSlot returns a data slot for a block's first write: a free one if
// any, else a new one at the end of the data area (the file grows when the
// block is written, so ENOSPC surfaces from that write).
func (d *Device) allocSlot() int64 {
	m := &d.meta
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.free); n > 0 {
		s := m.free[n-1]
		m.free = m.free[:n-1]
		return s
	}
	s := m.nslots
	m.nslots++
	return s
}

// releaseSlot returns a slot that no map entry has referenced (its write
// failed) to the free list at once.
func (d *Device) releaseSlot(s int64) {
	m := &d.meta
	m.mu.Lock()
	m.free = append(m.free, s)
	m.mu.Unlock()
}

// publish makes st the state of block b (whose stripe the caller holds for
// writing) and queues the change for the next flush. A slot the block
// stopped using (freed >= 0) becomes reusable only after the flush that
// records the change, so a crash can never leave the old, durable map
// entry pointing at another block's data.
func (d *Device) publish(b int64, st uint64, freed int64) {
	d.live[b].Store(st)
	m := &d.meta
	m.mu.Lock()
	if w, bit := b/64, uint64(1)<<(b%64); m.dirtyBits[w]&bit == 0 {
		m.dirtyBits[w] |= bit
		m.dirty = append(m.dirty, b)
	}
	if freed >= 0 {
		m.pendingFree = append(m.pendingFree, freed)
	}
	m.mu.Unlock()
}
