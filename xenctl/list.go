package xenctl

import "errors"

// ErrListFormat is wrapped by every error [ParseList] returns. The message
// names the line (counting from 1) and quotes the offending text.
var ErrListFormat = errors.New("malformed tmem list")

// List is the parsed text of a tmem LIST control operation
// (xen-tmem-abi.md §7). An all-clients listing has a [ListGlobal] record,
// one [ListShared] record per global shared pool, the clients with their
// pools and a [ListTrailer]; a single-client listing has just one client and
// its pools.
//
// Every record remembers which keys it had and in what order, and keeps keys
// it does not know in its Extra field, so [List.Format] reproduces the parsed
// text byte for byte. The order of the records themselves is remembered too
// when it is not the one Xen uses (G, S…, then each C followed by its P
// lines, then T).
type List struct {
	// Global is the G= record, nil in a single-client listing.
	Global *ListGlobal
	// Shared holds the S= records in order. Only the first one is
	// reliable: see [ListShared.Garbled].
	Shared []ListShared
	// Clients holds the C= records in order, each with the P= records
	// that followed it.
	Clients []ListClient
	// Trailer is the T or T= record, nil in a single-client listing.
	Trailer *ListTrailer

	// order holds the record tags ('G', 'S', 'C', 'P', 'T') in text order
	// when they were not in the order Xen writes them; nil otherwise.
	order []byte
}

// Client returns the client whose domain id is domid, or nil when the list
// has none. The pointer refers into l.Clients.
func (l *List) Client(domid uint16) *ListClient {
	for i := range l.Clients {
		if l.Clients[i].ID == domid {
			return &l.Clients[i]
		}
	}
	return nil
}

// ListKV is a key the parser does not know, kept so that [List.Format] can
// write it back, for example a statistic added by a later Xen release.
type ListKV struct {
	Key, Value string
	// Pos is the index of the item in its record, counting the items
	// after "X=" from 0.
	Pos int
}

// ListGlobal is the G= record: hypervisor-wide statistics. The first
// thirteen fields are in every listing; the rest only in the long form
// (Frames to CompressedBytes from Xen 4.0.1 on).
type ListGlobal struct {
	TotalOps           uint64 // Tt: tmem_op hypercalls (gen A: control calls too)
	ErroredOps         uint64 // Te: tmem_op calls that returned < 0
	FailedCopies       uint64 // Cf: failed copies to or from guests
	AllocFailed        uint64 // Af: failed sub-page allocations
	AllocPageFailed    uint64 // Pf: failed page allocations
	FreePages          uint64 // Ta: pages on tmem's own free list
	LowOnMemory        uint64 // Lm: never incremented
	Evicted            uint64 // Et: pages evicted
	EvictAttempts      uint64 // Ea: eviction attempts
	Relinquished       uint64 // Rt: pages given back to the Xen allocator
	RelinquishAttempts uint64 // Ra: relinquish attempts
	MaxEvictsPerRelinq uint64 // Rx: most evictions needed for one relinquish
	FlushedPools       uint64 // Fp: never incremented

	EphPages        int64  // Ec: ephemeral pages now
	MaxEphPages     int64  // Em: ephemeral pages, maximum
	Objects         int64  // Oc: objects now
	MaxObjects      int64  // Om: objects, maximum
	Nodes           int64  // Nc: radix-tree nodes now
	MaxNodes        int64  // Nm: radix-tree nodes, maximum
	PageDescs       int64  // Pc: page descriptors now
	MaxPageDescs    int64  // Pm: page descriptors, maximum
	Frames          int64  // Fc: data page frames now
	MaxFrames       int64  // Fm: data page frames, maximum
	ContentDescs    int64  // Sc: dedup content descriptors now
	MaxContentDescs int64  // Sm: dedup content descriptors, maximum
	EphPuts         uint64 // Ep: successful ephemeral puts
	DedupPuts       uint64 // Gd: deduplicated puts
	TZEBytes        uint64 // Zt: bytes held after trailing-zero elimination
	CompressedBytes uint64 // Gz: bytes held compressed (dedup path)

	// Long reports whether the record has the long-form keys. Format
	// reproduces the parsed keys while Long keeps its parsed value and
	// writes the canonical short or long form otherwise.
	Long bool
	// Extra holds the keys the parser does not know, in order.
	Extra []ListKV

	form listForm
}

// ListClient is a C= record and the P= records that followed it.
type ListClient struct {
	ID       uint16 // CI: domain id
	Weight   int64  // ww: weight (a u32 printed signed)
	Cap      int64  // ca: cap, Xen 4.0–4.7 only; see HasCap
	Compress bool   // co: compression enabled
	Frozen   bool   // fr: frozen (puts and flushes fail with EFROZEN)
	Cycles   uint64 // Tc: CPU cycles spent in this client's ops (0 from 4.4)
	EphGets  int64  // Ge: successful ephemeral gets
	PersPuts int64  // Pp: successful persistent puts
	PersGets int64  // Gp: successful persistent gets

	EphPages        int64 // Ec: ephemeral pages now (long form)
	MaxEphPages     int64 // Em: ephemeral pages, maximum
	CompressedPages int64 // cp: pages stored compressed
	CompressedBytes int64 // cb: total size of those pages
	CompressPoor    int64 // cn: puts that compressed poorly
	CompressNoMem   int64 // cm: puts where compression ran out of memory

	// HasCap reports whether the record has the ca key (Xen 4.0–4.7).
	HasCap bool
	// Long reports whether the record has the long-form keys; see
	// [ListGlobal.Long].
	Long bool
	// Implicit reports that the listing had no C= line for this client:
	// its P= lines came before any C= line. Format writes only the pools.
	Implicit bool
	// Pools holds the client's P= records in slot order.
	Pools []ListPool
	// Extra holds the keys the parser does not know, in order.
	Extra []ListKV

	form listForm
}

// ListPoolType is the PT item: persistent or ephemeral, shared or private.
// The zero value is an ephemeral private pool ("EP").
type ListPoolType uint8

// The bits of a [ListPoolType].
const (
	ListPoolPersistent ListPoolType = 1 << iota // first letter P, else E
	ListPoolShared                              // second letter S, else P
)

// Persistent reports whether the type is persistent (frontswap-like).
func (t ListPoolType) Persistent() bool { return t&ListPoolPersistent != 0 }

// Shared reports whether the type is shared between domains.
func (t ListPoolType) Shared() bool { return t&ListPoolShared != 0 }

// String returns the two letters Xen prints: "EP", "ES", "PP" or "PS".
func (t ListPoolType) String() string { return string(t.appendTo(nil)) }

// MarshalText returns the two letters of [ListPoolType.String].
func (t ListPoolType) MarshalText() ([]byte, error) { return t.appendTo(nil), nil }

func (t ListPoolType) appendTo(b []byte) []byte {
	p, s := byte('E'), byte('P')
	if t.Persistent() {
		p = 'P'
	}
	if t.Shared() {
		s = 'S'
	}
	return append(b, p, s)
}

// ListPoolStats are the long-form statistics of a P= or S= record.
type ListPoolStats struct {
	Pages           int64  // Pc: pages now
	MaxPages        int64  // Pm: pages, maximum
	Objects         int64  // Oc: objects now
	MaxObjects      int64  // Om: objects, maximum
	Nodes           uint64 // Nc: radix-tree nodes now
	MaxNodes        uint64 // Nm: radix-tree nodes, maximum
	GoodPuts        uint64 // ps: successful puts
	Puts            uint64 // pt: all puts
	DupPutsFlushed  uint64 // pd: overwrite puts that failed and dropped the old copy
	DupPutsReplaced uint64 // pr: overwrite puts that replaced the data
	NoMemPuts       uint64 // px: new-page puts that failed
	FoundGets       uint64 // gs: successful gets
	Gets            uint64 // gt: gets that reached the lookup
	FlushesFound    uint64 // fs: page flushes that found the page
	Flushes         uint64 // ft: all page flushes
	ObjFlushesFound uint64 // os: object flushes that found the object
	ObjFlushes      uint64 // ot: all object flushes
}

// ListPool is a P= record: one pool in one client's slot.
type ListPool struct {
	ClientID uint16       // CI: domain id of the listed client
	ID       int64        // PI: the pool's own id (the owner's slot for a shared pool)
	Type     ListPoolType // PT
	// UUID holds U0 and U1. Xen prints 0 for private pools.
	UUID [2]uint64
	ListPoolStats

	// Long reports whether the record has the long-form keys; see
	// [ListGlobal.Long].
	Long bool
	// Extra holds the keys the parser does not know, in order.
	Extra []ListKV

	form listForm
}

// Persistent reports whether the pool is persistent (PT starts with P).
func (p ListPool) Persistent() bool { return p.Type.Persistent() }

// Shared reports whether the pool is shared (PT ends with S). A client
// that joined a shared pool lists it with the owner's pool id.
func (p ListPool) Shared() bool { return p.Type.Shared() }

// ListShared is an S= record: one global shared pool.
//
// Every Xen release has a bug here: the scratch offset is not reset between
// shared pools, so every S= record after the first repeats the start of the
// first one, cut at an arbitrary byte, followed by the rest of its own
// record. The parser never fails because of an S= line: it marks every S=
// record after the first, and any S= line it cannot parse, as Garbled, keeps
// the line in Raw and fills in whatever items do parse. Prefer the P= records
// for anything but the first shared pool.
type ListShared struct {
	Index   int64        // SI: index in the global shared-pool table
	Type    ListPoolType // PT
	UUID    [2]uint64    // U0, U1
	Sharers []uint16     // SC: domain ids of the sharing clients, in order
	ListPoolStats

	// Garbled reports that the values are unreliable; see the type's
	// documentation.
	Garbled bool
	// Raw is the text of a garbled line without its newline. When it is
	// not empty, Format writes it instead of the fields.
	Raw string

	// Long reports whether the record has the long-form keys; see
	// [ListGlobal.Long].
	Long bool
	// Extra holds the keys the parser does not know, in order.
	Extra []ListKV

	form listForm
}

// ListTrailer is the last record of an all-clients listing: a bare "T" from
// Xen 4.4 on, or "T=" with cycle counters in 4.0–4.3.
type ListTrailer struct {
	// Perf reports the "T=" form (Xen 4.0–4.3 built with cycle counters).
	Perf bool
	// Counters holds the cycle counters in order.
	Counters []ListCycles
	// Extra holds the items that are not part of a complete counter.
	Extra []ListKV
}

// ListCycles is one cycle counter of a "T=" trailer, printed as the four
// items <Op>n, <Op>t, <Op>x and <Op>m.
type ListCycles struct {
	// Op is the tag letter: G (successful get), P (successful put),
	// g (failed get), p (failed put), F (page flush), O (object flush),
	// C (page copy), c (compress), d (decompress).
	Op     byte
	Count  uint64 // <Op>n: samples
	Cycles uint64 // <Op>t: total cycles
	Max    int64  // <Op>x: most cycles
	Min    int64  // <Op>m: fewest cycles; 2147483647 while Count is 0
}

// listForm records which known keys a parsed record had and in what order.
type listForm struct {
	set  bool   // the record was parsed
	long bool   // Long as parsed
	cap  bool   // HasCap as parsed (clients)
	mask uint64 // bit i: key i of the record's table was present
	// order holds the table indices of the known items in text order
	// (SC once per sharer) when they were not in table order.
	order []uint8
}
