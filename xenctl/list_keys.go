package xenctl

// listKind says how a key's value is written when the Go type of its field
// does not settle it.
type listKind uint8

const (
	listDec    listKind = iota // decimal
	listHex                    // lowercase hexadecimal, no padding (U0, U1)
	listSharer                 // SC: repeated, one item per sharing client
)

// listKey describes one known key of a record.
type listKey struct {
	name string
	kind listKind
	long bool // written only in the long form
}

// listTable lists the known keys of one record type in the order Xen
// writes them. field returns a pointer to the field that holds key i:
// *uint64, *int64, *uint16, *bool, *ListPoolType or *[]uint16 (SC).
type listTable[R any] struct {
	keys  []listKey
	codes []uint16 // the key names as big-endian uint16s, for lookup
	field func(r *R, i int) any
	short uint64 // mask of the short-form keys
	all   uint64 // mask of all keys
}

func newListTable[R any](field func(r *R, i int) any, keys []listKey) *listTable[R] {
	t := &listTable[R]{keys: keys, field: field, codes: make([]uint16, len(keys))}
	for i, k := range keys {
		t.codes[i] = uint16(k.name[0])<<8 | uint16(k.name[1])
		t.all |= 1 << i
		if !k.long {
			t.short |= 1 << i
		}
	}
	return t
}

// lookup returns the index of the two-byte key, trying hint and hint+1
// before a linear search, or -1.
func (t *listTable[R]) lookup(key []byte, hint int) int {
	if len(key) != 2 {
		return -1
	}
	code := uint16(key[0])<<8 | uint16(key[1])
	if hint >= 0 && hint < len(t.codes) && t.codes[hint] == code {
		return hint
	}
	for i, c := range t.codes {
		if c == code {
			return i
		}
	}
	return -1
}

// hasLong reports whether mask includes a long-form key.
func (t *listTable[R]) hasLong(mask uint64) bool { return mask&^t.short != 0 }

// canonical returns the mask of the canonical short or long form.
func (t *listTable[R]) canonical(long bool) uint64 {
	if long {
		return t.all
	}
	return t.short
}

var listGlobalTable = newListTable(listGlobalField, []listKey{
	{name: "Tt"}, {name: "Te"}, {name: "Cf"}, {name: "Af"}, {name: "Pf"},
	{name: "Ta"}, {name: "Lm"}, {name: "Et"}, {name: "Ea"}, {name: "Rt"},
	{name: "Ra"}, {name: "Rx"}, {name: "Fp"},
	{name: "Ec", long: true}, {name: "Em", long: true},
	{name: "Oc", long: true}, {name: "Om", long: true},
	{name: "Nc", long: true}, {name: "Nm", long: true},
	{name: "Pc", long: true}, {name: "Pm", long: true},
	{name: "Fc", long: true}, {name: "Fm", long: true},
	{name: "Sc", long: true}, {name: "Sm", long: true},
	{name: "Ep", long: true}, {name: "Gd", long: true},
	{name: "Zt", long: true}, {name: "Gz", long: true},
})

func listGlobalField(g *ListGlobal, i int) any {
	switch i {
	case 0:
		return &g.TotalOps
	case 1:
		return &g.ErroredOps
	case 2:
		return &g.FailedCopies
	case 3:
		return &g.AllocFailed
	case 4:
		return &g.AllocPageFailed
	case 5:
		return &g.FreePages
	case 6:
		return &g.LowOnMemory
	case 7:
		return &g.Evicted
	case 8:
		return &g.EvictAttempts
	case 9:
		return &g.Relinquished
	case 10:
		return &g.RelinquishAttempts
	case 11:
		return &g.MaxEvictsPerRelinq
	case 12:
		return &g.FlushedPools
	case 13:
		return &g.EphPages
	case 14:
		return &g.MaxEphPages
	case 15:
		return &g.Objects
	case 16:
		return &g.MaxObjects
	case 17:
		return &g.Nodes
	case 18:
		return &g.MaxNodes
	case 19:
		return &g.PageDescs
	case 20:
		return &g.MaxPageDescs
	case 21:
		return &g.Frames
	case 22:
		return &g.MaxFrames
	case 23:
		return &g.ContentDescs
	case 24:
		return &g.MaxContentDescs
	case 25:
		return &g.EphPuts
	case 26:
		return &g.DedupPuts
	case 27:
		return &g.TZEBytes
	case 28:
		return &g.CompressedBytes
	}
	return nil
}

// listClientCap is the index of ca in listClientTable.
const listClientCap = 2

var listClientTable = newListTable(listClientField, []listKey{
	{name: "CI"}, {name: "ww"}, {name: "ca"}, {name: "co"}, {name: "fr"},
	{name: "Tc"}, {name: "Ge"}, {name: "Pp"}, {name: "Gp"},
	{name: "Ec", long: true}, {name: "Em", long: true},
	{name: "cp", long: true}, {name: "cb", long: true},
	{name: "cn", long: true}, {name: "cm", long: true},
})

func listClientField(c *ListClient, i int) any {
	switch i {
	case 0:
		return &c.ID
	case 1:
		return &c.Weight
	case listClientCap:
		return &c.Cap
	case 3:
		return &c.Compress
	case 4:
		return &c.Frozen
	case 5:
		return &c.Cycles
	case 6:
		return &c.EphGets
	case 7:
		return &c.PersPuts
	case 8:
		return &c.PersGets
	case 9:
		return &c.EphPages
	case 10:
		return &c.MaxEphPages
	case 11:
		return &c.CompressedPages
	case 12:
		return &c.CompressedBytes
	case 13:
		return &c.CompressPoor
	case 14:
		return &c.CompressNoMem
	}
	return nil
}

// listStatsKeys are the long-form keys of P= and S= records.
var listStatsKeys = []listKey{
	{name: "Pc", long: true}, {name: "Pm", long: true},
	{name: "Oc", long: true}, {name: "Om", long: true},
	{name: "Nc", long: true}, {name: "Nm", long: true},
	{name: "ps", long: true}, {name: "pt", long: true},
	{name: "pd", long: true}, {name: "pr", long: true},
	{name: "px", long: true}, {name: "gs", long: true},
	{name: "gt", long: true}, {name: "fs", long: true},
	{name: "ft", long: true}, {name: "os", long: true},
	{name: "ot", long: true},
}

func listStatsField(s *ListPoolStats, i int) any {
	switch i {
	case 0:
		return &s.Pages
	case 1:
		return &s.MaxPages
	case 2:
		return &s.Objects
	case 3:
		return &s.MaxObjects
	case 4:
		return &s.Nodes
	case 5:
		return &s.MaxNodes
	case 6:
		return &s.GoodPuts
	case 7:
		return &s.Puts
	case 8:
		return &s.DupPutsFlushed
	case 9:
		return &s.DupPutsReplaced
	case 10:
		return &s.NoMemPuts
	case 11:
		return &s.FoundGets
	case 12:
		return &s.Gets
	case 13:
		return &s.FlushesFound
	case 14:
		return &s.Flushes
	case 15:
		return &s.ObjFlushesFound
	case 16:
		return &s.ObjFlushes
	}
	return nil
}

// listIdentKeys is the number of short-form keys of P= and S= records.
const listIdentKeys = 5

var listPoolTable = newListTable(listPoolField, append([]listKey{
	{name: "CI"}, {name: "PI"}, {name: "PT"},
	{name: "U0", kind: listHex}, {name: "U1", kind: listHex},
}, listStatsKeys...))

func listPoolField(p *ListPool, i int) any {
	switch i {
	case 0:
		return &p.ClientID
	case 1:
		return &p.ID
	case 2:
		return &p.Type
	case 3:
		return &p.UUID[0]
	case 4:
		return &p.UUID[1]
	}
	return listStatsField(&p.ListPoolStats, i-listIdentKeys)
}

var listSharedTable = newListTable(listSharedField, append([]listKey{
	{name: "SI"}, {name: "PT"},
	{name: "U0", kind: listHex}, {name: "U1", kind: listHex},
	{name: "SC", kind: listSharer},
}, listStatsKeys...))

func listSharedField(s *ListShared, i int) any {
	switch i {
	case 0:
		return &s.Index
	case 1:
		return &s.Type
	case 2:
		return &s.UUID[0]
	case 3:
		return &s.UUID[1]
	case 4:
		return &s.Sharers
	}
	return listStatsField(&s.ListPoolStats, i-listIdentKeys)
}
