package xenctl

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The -update flag rewrites testdata/list/*.golden (never the *.txt inputs).
// It is registered in init, after every package-level variable, so that it
// coexists with another test file of this package defining the same flag.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files in testdata")
	}
}

func listUpdate() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// listIgnoreForm makes cmp skip the unexported layout of the records.
var listIgnoreForm = cmpopts.IgnoreUnexported(List{}, ListGlobal{}, ListClient{}, ListPool{}, ListShared{})

// listFixtures returns the LIST texts in testdata/list by file stem. The
// xen-4.12.4-* files are the strings a real Xen 4.12.4 returned; abi-7.5-*
// are the examples of xen-tmem-abi.md §7.5; constructed-* simulate the
// garbled S= output of Xen's tmemc_list_shared (see testdata/list/README.md).
func listFixtures(tb testing.TB) map[string][]byte {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "list", "*.txt"))
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no fixtures in testdata/list: %v", err)
	}
	out := make(map[string][]byte, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(p), ".txt")] = b
	}
	return out
}

func listMustParse(tb testing.TB, text []byte) *List {
	tb.Helper()
	l, err := ParseList(text)
	if err != nil {
		tb.Fatalf("ParseList: %v", err)
	}
	return l
}

func TestListRoundTrip(t *testing.T) {
	for name, text := range listFixtures(t) {
		t.Run(name, func(t *testing.T) {
			l := listMustParse(t, text)
			if diff := cmp.Diff(string(text), string(l.Format())); diff != "" {
				t.Errorf("Format mismatch (-parsed +formatted):\n%s", diff)
			}
			// The buffer as Xen leaves it: a NUL, then old contents.
			buf := append(append(bytes.Clone(text), 0), "G=Tt:1\nstale\x00"...)
			l2 := listMustParse(t, buf)
			if diff := cmp.Diff(l, l2, listIgnoreForm); diff != "" {
				t.Errorf("parse with NUL differs (-want +got):\n%s", diff)
			}
			if got := l.AppendFormat([]byte("prefix")); string(got) != "prefix"+string(text) {
				t.Errorf("AppendFormat = %q, want the prefix and the text", got)
			}
		})
	}
}

func TestListGolden(t *testing.T) {
	for name, text := range listFixtures(t) {
		t.Run(name, func(t *testing.T) {
			got, err := json.MarshalIndent(listMustParse(t, text), "", "\t")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", "list", name+".golden")
			if listUpdate() {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestListGolden -update)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("parsed list differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

func TestParseListValues(t *testing.T) {
	fx := listFixtures(t)
	poolTypes := func(c *ListClient) []string {
		var s []string
		for _, p := range c.Pools {
			s = append(s, p.Type.String())
		}
		return s
	}
	tests := []struct {
		name, fixture string
		got           func(l *List) any
		want          any
	}{{
		name:    "global total ops",
		fixture: "xen-4.12.4-freeable-flush-filled",
		got:     func(l *List) any { return l.Global.TotalOps },
		want:    uint64(1794),
	}, {
		name:    "global long counters",
		fixture: "xen-4.12.4-freeable-flush-after-flushes",
		got: func(l *List) any {
			g := l.Global
			return []int64{g.EphPages, g.MaxEphPages, g.PageDescs, g.Frames, int64(g.Evicted), int64(g.EphPuts)}
		},
		want: []int64{286, 1536, 542, 542, 1250, 1536},
	}, {
		name:    "free pages after flush",
		fixture: "xen-4.12.4-freeable-flush-end",
		got:     func(l *List) any { return []any{l.Global.FreePages, len(l.Client(0).Pools)} },
		want:    []any{uint64(560), 0},
	}, {
		name:    "weight",
		fixture: "xen-4.12.4-pv-dom0-after-set-client-info",
		got:     func(l *List) any { return l.Client(0).Weight },
		want:    int64(7),
	}, {
		name:    "frozen",
		fixture: "xen-4.12.4-pv-dom0-frozen",
		got:     func(l *List) any { return []bool{l.Client(0).Frozen, l.Client(0).Long, l.Global.Long} },
		want:    []bool{true, false, false},
	}, {
		name:    "pool kinds",
		fixture: "xen-4.12.4-pv-dom0-after-new-pools-all-short",
		got: func(l *List) any {
			p := l.Client(0).Pools
			return []any{poolTypes(l.Client(0)), p[0].Persistent(), p[0].Shared(), p[1].Persistent(), p[1].Shared()}
		},
		want: []any{[]string{"EP", "PP"}, false, false, true, false},
	}, {
		name:    "pool stats",
		fixture: "xen-4.12.4-pv-dom0-after-sysctl-destroy",
		got:     func(l *List) any { return l.Client(0).Pools[1].ListPoolStats },
		want: ListPoolStats{Pages: 2, MaxPages: 3, Objects: 1, MaxObjects: 2, Nodes: 1, MaxNodes: 2,
			GoodPuts: 4, Puts: 6, NoMemPuts: 1, FoundGets: 2, Gets: 3, FlushesFound: 1, Flushes: 3,
			ObjFlushesFound: 1, ObjFlushes: 1},
	}, {
		name:    "buffer written past len=100",
		fixture: "xen-4.12.4-pv-dom0-after-new-pools-all-short-len100",
		got:     func(l *List) any { return []any{len(l.Clients), len(l.Clients[0].Pools), l.Trailer != nil} },
		want:    []any{1, 0, true},
	}, {
		name:    "single client: no G and no T",
		fixture: "xen-4.12.4-pv-dom0-after-new-pools-dom0-long",
		got:     func(l *List) any { return []any{l.Global == nil, l.Trailer == nil, len(l.Client(0).Pools)} },
		want:    []any{true, true, 2},
	}, {
		name:    "failed listing is empty",
		fixture: "xen-4.12.4-pv-dom0-initial-dom0-short",
		got:     func(l *List) any { return l },
		want:    &List{},
	}, {
		name:    "bare trailer",
		fixture: "xen-4.12.4-pv-dom0-initial-all-short",
		got:     func(l *List) any { return l.Trailer },
		want:    &ListTrailer{},
	}, {
		name:    "cap in 4.5, not in 4.12",
		fixture: "abi-7.5-ex1-xen-4.5-all-short",
		got:     func(l *List) any { return []bool{l.Client(3).HasCap, l.Client(3).Long} },
		want:    []bool{true, false},
	}, {
		name:    "4.12 long client",
		fixture: "abi-7.5-ex2-xen-4.12-one-client-long",
		got: func(l *List) any {
			c := l.Client(3)
			return []any{c.HasCap, c.Long, c.Weight, c.Compress, c.CompressedBytes, c.Pools[0].Gets}
		},
		want: []any{false, true, int64(20), true, int64(5412300), uint64(5310)},
	}, {
		name:    "shared pool uuid and sharers",
		fixture: "abi-7.5-ex3-xen-4.1-all-long-shared-perf",
		got: func(l *List) any {
			s := l.Shared[0]
			return []any{s.Index, s.Type.String(), s.UUID, s.Sharers, s.Garbled, s.Pages}
		},
		want: []any{int64(0), "ES", [2]uint64{0x8899aabbccddeeff, 0x0011223344556677}, []uint16{1, 2}, false, int64(300)},
	}, {
		name:    "shared pool under two clients shows the owner's id",
		fixture: "abi-7.5-ex3-xen-4.1-all-long-shared-perf",
		got: func(l *List) any {
			a, b := l.Client(1).Pools[1], l.Client(2).Pools[0]
			return []any{a.ID, b.ID, a.Shared(), b.Shared(), a.UUID == b.UUID, b.ClientID}
		},
		want: []any{int64(1), int64(1), true, true, true, uint16(2)},
	}, {
		name:    "cycle counters",
		fixture: "abi-7.5-ex3-xen-4.1-all-long-shared-perf",
		got: func(l *List) any {
			t := l.Trailer
			return []any{t.Perf, len(t.Counters), t.Counters[0], t.Counters[8], len(t.Extra)}
		},
		want: []any{true, 9, ListCycles{Op: 'G', Count: 2210, Cycles: 3950112, Max: 48211, Min: 1120},
			ListCycles{Op: 'd', Min: 2147483647}, 0},
	}, {
		name:    "client cycles in 4.1",
		fixture: "abi-7.5-ex3-xen-4.1-all-long-shared-perf",
		got:     func(l *List) any { return []uint64{l.Client(1).Cycles, l.Client(2).Cycles} },
		want:    []uint64{81230042, 1204400},
	}, {
		name:    "garbled shared records",
		fixture: "constructed-xen-4.1-garbled-shared-long",
		got: func(l *List) any {
			var g []bool
			for _, s := range l.Shared {
				g = append(g, s.Garbled)
			}
			return []any{g, l.Shared[0].Raw, l.Shared[1].Sharers, strings.HasPrefix(l.Shared[2].Raw, "S=SI:0,")}
		},
		want: []any{[]bool{false, true, true}, "", []uint16{3, 4}, true},
	}, {
		name:    "garbled short form splits into an extra line",
		fixture: "constructed-xen-4.5-garbled-shared-short",
		got: func(l *List) any {
			return []any{len(l.Shared), l.Shared[1].Raw, l.Shared[2].Raw, l.Shared[2].UUID[0]}
		},
		want: []any{3, "S=SI:0,PT:ES,U0:1,U1:2,SC:1", "S=SI:1,PT:ES,U0:8899aa,SC:2,SC:3", uint64(0x8899aa)},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, ok := fx[tt.fixture]
			if !ok {
				t.Fatalf("no fixture %q", tt.fixture)
			}
			if diff := cmp.Diff(tt.want, tt.got(listMustParse(t, text)), listIgnoreForm); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseListExample1 checks every field of xen-tmem-abi.md §7.5 example 1.
func TestParseListExample1(t *testing.T) {
	want := &List{
		Global: &ListGlobal{TotalOps: 48213, ErroredOps: 17, FreePages: 12, Evicted: 3051, EvictAttempts: 3102},
		Clients: []ListClient{{
			ID: 3, EphGets: 1974, PersPuts: 812, PersGets: 95, HasCap: true,
			Pools: []ListPool{
				{ClientID: 3, ID: 0, Type: 0},
				{ClientID: 3, ID: 1, Type: ListPoolPersistent},
			},
		}},
		Trailer: &ListTrailer{},
	}
	got := listMustParse(t, listFixtures(t)["abi-7.5-ex1-xen-4.5-all-short"])
	if diff := cmp.Diff(want, got, listIgnoreForm); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got.Client(4) != nil {
		t.Errorf("Client(4) = %+v, want nil", got.Client(4))
	}
}
