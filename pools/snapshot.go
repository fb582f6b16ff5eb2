package pools

import "time"

// PageKiB is the size of one tmem page in KiB. tmem only supports 4 KiB
// pages (xen-tmem-abi.md §3.4).
const PageKiB = 4

// Snapshot is one observation of the host: physinfo and QUERY_FREEABLE_MB in
// Host, the LIST G= record in Global, and one Client per C= record with its
// P= records. The daemon builds it from xenctl values; this package never
// reads Xen itself.
//
// Counters are cumulative, exactly as LIST prints them. Gauges (pages now,
// free memory) are values at Time. The zero Time means "unknown": no rate is
// computed across it.
type Snapshot struct {
	Time    time.Time
	Host    Host
	Global  Global
	Clients []Client
}

// Host is the host memory picture, all in KiB.
type Host struct {
	// TotalKiB is physinfo total_pages × 4.
	TotalKiB uint64
	// FreeKiB is physinfo free_pages × 4. Xen excludes everything tmem
	// holds from it (xen-tmem-abi.md §10.3).
	FreeKiB uint64
	// FreeableKiB is QUERY_FREEABLE_MB × 1024: tmem's free list plus its
	// ephemeral pages and their metadata, rounded down to whole MiB by Xen.
	FreeableKiB uint64
	// OutstandingKiB is physinfo outstanding_pages × 4: memory claimed by
	// domains being built but not yet allocated (Xen 4.3+; 0 before).
	OutstandingKiB uint64
}

// AvailKiB returns the memory really available to a new allocation:
// FreeKiB minus the outstanding claims, never below zero. Watermarks and
// reservations compare against this value.
func (h Host) AvailKiB() uint64 { return subSat(h.FreeKiB, h.OutstandingKiB) }

// Global holds the counters of the LIST G= record (all-clients listing,
// long form). Fields are cumulative counters unless marked as gauges.
type Global struct {
	Ops                uint64 // Tt: tmem_op hypercalls
	FailedOps          uint64 // Te: tmem_op calls that returned < 0
	AllocFailed        uint64 // Af: failed sub-page allocations
	PageAllocFailed    uint64 // Pf: failed page allocations
	FreePages          uint64 // Ta: pages on tmem's own free list (gauge)
	Evictions          uint64 // Et: pages evicted, including those freed by FLUSH
	EvictionAttempts   uint64 // Ea: eviction attempts
	Relinquished       uint64 // Rt: pages handed back to the Xen allocator
	RelinquishAttempts uint64 // Ra: relinquish attempts
	EphPages           uint64 // Ec: ephemeral pages now (gauge)
	EphMax             uint64 // Em: most ephemeral pages ever held (gauge)
	EphPuts            uint64 // Ep: successful ephemeral puts (Xen 4.0.1+)
}

// Client is one tmem client (one domain): the C= record, its P= records,
// and the settings the daemon found in the domain's metadata.
type Client struct {
	DomID uint16 // CI
	Name  string // domain name, or "dom<ID>" when unknown; for reasons only
	// Handle is the domain's UUID from the domain list, zero when unknown.
	// A different non-zero handle under the same DomID means a new domain:
	// its counters restart even if they did not go backwards.
	Handle   [16]byte
	Weight   uint32 // ww
	Frozen   bool   // fr
	Compress bool   // co
	EphPages uint64 // Ec: ephemeral pages now (gauge, long form)
	EphMax   uint64 // Em: most ephemeral pages ever held (gauge, long form)
	EphGets  uint64 // Ge: successful ephemeral gets
	PersPuts uint64 // Pp: successful persistent puts
	PersGets uint64 // Gp: successful persistent gets
	// Pools are the client's P= records in slot order.
	Pools []Pool

	// Priority orders clients for freezing below the critical watermark:
	// lower priorities are frozen first, and clients whose priority is
	// above [FreezePolicy.MaxPriority] are never frozen. From metadata;
	// 0 by default.
	Priority int
	// WeightMin and WeightMax bound the weights the policy may give this
	// client. When WeightMax is 0 (or below WeightMin) the bounds of
	// [WeightPolicy] apply.
	WeightMin, WeightMax uint32
}

// Pool is one P= record: one pool in one client's slot. For a shared pool
// every sharer lists the same statistics, and ID is the owner's slot.
type Pool struct {
	ID         int       // PI
	Persistent bool      // PT first letter P
	Shared     bool      // PT second letter S
	UUID       [2]uint64 // U0, U1 (0 for private pools)
	Pages      uint64    // Pc: pages now (gauge)

	PutsOK       uint64 // ps: successful puts (new pages and overwrites)
	Puts         uint64 // pt: all puts
	PutsFailed   uint64 // px: new-page puts that failed (no memory, frozen)
	GetsOK       uint64 // gs: successful gets
	Gets         uint64 // gt: gets that reached the lookup
	FlushesOK    uint64 // fs: page flushes that found the page
	Flushes      uint64 // ft: all page flushes
	ObjFlushesOK uint64 // os: object flushes that found the object
	ObjFlushes   uint64 // ot: all object flushes
}

// Ephemeral reports whether the pool's pages may be evicted by Xen.
func (p *Pool) Ephemeral() bool { return !p.Persistent }

// samePool reports whether a and b are the same pool in two snapshots of
// one client: same slot id, type and uuid.
func samePool(a, b *Pool) bool {
	return a.ID == b.ID && a.Persistent == b.Persistent && a.Shared == b.Shared && a.UUID == b.UUID
}

// hasEphemeral reports whether c takes part in ephemeral memory: it has an
// ephemeral pool or holds ephemeral pages.
func (c *Client) hasEphemeral() bool {
	if c.EphPages > 0 {
		return true
	}
	for i := range c.Pools {
		if !c.Pools[i].Persistent {
			return true
		}
	}
	return false
}

// ephPages returns the client's ephemeral pages: Ec, or when that is 0
// (short-form listing) the pages of its private ephemeral pools.
func (c *Client) ephPages() uint64 {
	if c.EphPages > 0 {
		return c.EphPages
	}
	var n uint64
	for i := range c.Pools {
		if p := &c.Pools[i]; !p.Persistent && !p.Shared {
			n += p.Pages
		}
	}
	return n
}

// subSat returns a − b, or 0 when b > a.
func subSat(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}
