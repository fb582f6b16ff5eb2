package workload

// lru is a fixed-capacity least-recently-used map from a key to a slot
// (which the drivers use as a guest frame), with no allocation once it has
// filled up.
type lru[K comparable] struct {
	idx  map[K]int32
	keys []K
	prev []int32
	next []int32
	free []int32 // slots not in use
	head int32   // most recent
	tail int32   // least recent
}

func newLRU[K comparable](capacity int) *lru[K] {
	l := &lru[K]{idx: make(map[K]int32, capacity), keys: make([]K, capacity),
		prev: make([]int32, capacity), next: make([]int32, capacity), head: -1, tail: -1}
	for s := capacity - 1; s >= 0; s-- {
		l.free = append(l.free, int32(s))
	}
	return l
}

func (l *lru[K]) unlink(s int32) {
	if l.prev[s] >= 0 {
		l.next[l.prev[s]] = l.next[s]
	} else {
		l.head = l.next[s]
	}
	if l.next[s] >= 0 {
		l.prev[l.next[s]] = l.prev[s]
	} else {
		l.tail = l.prev[s]
	}
}

func (l *lru[K]) pushFront(s int32) {
	l.prev[s], l.next[s] = -1, l.head
	if l.head >= 0 {
		l.prev[l.head] = s
	} else {
		l.tail = s
	}
	l.head = s
}

// get returns k's slot and makes it the most recent.
func (l *lru[K]) get(k K) (int32, bool) {
	s, ok := l.idx[k]
	if ok && s != l.head {
		l.unlink(s)
		l.pushFront(s)
	}
	return s, ok
}

// add inserts k, which must not be present, in a free slot or, when the
// cache is full, in the least recent key's slot; that key is returned.
func (l *lru[K]) add(k K) (slot int32, victim K, evicted bool) {
	if n := len(l.free); n > 0 {
		slot = l.free[n-1]
		l.free = l.free[:n-1]
	} else {
		slot = l.tail
		victim, evicted = l.keys[slot], true
		delete(l.idx, victim)
		l.unlink(slot)
	}
	l.keys[slot] = k
	l.idx[k] = slot
	l.pushFront(slot)
	return slot, victim, evicted
}

// remove drops k and frees its slot.
func (l *lru[K]) remove(k K) bool {
	s, ok := l.idx[k]
	if !ok {
		return false
	}
	delete(l.idx, k)
	l.unlink(s)
	l.free = append(l.free, s)
	return true
}

// removeIf drops every key for which pred holds.
func (l *lru[K]) removeIf(pred func(K) bool) {
	for s := l.head; s >= 0; {
		next := l.next[s]
		if k := l.keys[s]; pred(k) {
			l.remove(k)
		}
		s = next
	}
}

func (l *lru[K]) len() int { return len(l.idx) }
