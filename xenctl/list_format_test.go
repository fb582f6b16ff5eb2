package xenctl

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestListFormatBuilt formats lists built in Go, which print the canonical
// form of the newest release that has their keys.
func TestListFormatBuilt(t *testing.T) {
	fx := listFixtures(t)
	tests := []struct {
		name string
		list *List
		want string
	}{{
		name: "empty",
		list: &List{},
		want: "",
	}, {
		name: "4.12 short",
		list: &List{
			Global: &ListGlobal{TotalOps: 7, ErroredOps: 5},
			Clients: []ListClient{{Weight: 7, Pools: []ListPool{
				{}, {ID: 1, Type: ListPoolPersistent},
			}}},
			Trailer: &ListTrailer{},
		},
		want: string(fx["xen-4.12.4-pv-dom0-after-set-client-info"]),
	}, {
		name: "4.12 one client long",
		list: &List{Clients: []ListClient{{
			ID: 3, Weight: 20, Compress: true, EphGets: 1974, PersPuts: 812, PersGets: 95,
			EphPages: 2210, MaxEphPages: 4096, CompressedPages: 2700, CompressedBytes: 5412300, CompressPoor: 41,
			Long: true,
			Pools: []ListPool{{
				ClientID: 3, Long: true,
				ListPoolStats: ListPoolStats{
					Pages: 2210, MaxPages: 4096, Objects: 388, MaxObjects: 402, Nodes: 131, MaxNodes: 140,
					GoodPuts: 6120, Puts: 6180, DupPutsReplaced: 17, NoMemPuts: 60, FoundGets: 1974, Gets: 5310,
					FlushesFound: 905, Flushes: 2417, ObjFlushesFound: 33, ObjFlushes: 51,
				},
			}, {
				ClientID: 3, ID: 1, Type: ListPoolPersistent, Long: true,
				ListPoolStats: ListPoolStats{
					Pages: 717, MaxPages: 812, Objects: 16, MaxObjects: 16, Nodes: 12, MaxNodes: 12,
					GoodPuts: 812, Puts: 812, FoundGets: 95, Gets: 95, FlushesFound: 95, Flushes: 95,
				},
			}},
		}}},
		want: string(fx["abi-7.5-ex2-xen-4.12-one-client-long"]),
	}, {
		name: "cap, shared, extra, counters",
		list: &List{
			Shared: []ListShared{{Type: ListPoolShared, UUID: [2]uint64{0xab, 1}, Sharers: []uint16{1, 2}}},
			Clients: []ListClient{{ID: 1, HasCap: true, Cap: -1, Frozen: true,
				Extra: []ListKV{{Key: "zz", Value: "1", Pos: 2}}}},
			Trailer: &ListTrailer{Counters: []ListCycles{{Op: 'c', Min: 2147483647}},
				Extra: []ListKV{{Key: "new", Value: "x", Pos: 0}}},
		},
		want: "S=SI:0,PT:ES,U0:ab,U1:1,SC:1,SC:2\n" +
			"C=CI:1,ww:0,zz:1,ca:-1,co:0,fr:1,Tc:0,Ge:0,Pp:0,Gp:0\n" +
			"T=new:x,cn:0,ct:0,cx:0,cm:2147483647\n",
	}, {
		name: "garbled shared keeps its raw text",
		list: &List{Shared: []ListShared{{Garbled: true, Raw: "S=SI:0,PT:ES,U0:8899aa,SC:3", Index: 4}}},
		want: "S=SI:0,PT:ES,U0:8899aa,SC:3\n",
	}, {
		name: "implicit client prints pools only",
		list: &List{Clients: []ListClient{{ID: 2, Implicit: true, Pools: []ListPool{{ClientID: 2}}}}},
		want: "P=CI:2,PI:0,PT:EP,U0:0,U1:0\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, string(tt.list.Format())); diff != "" {
				t.Errorf("Format (-want +got):\n%s", diff)
			}
		})
	}
}

// TestListFormatEdited checks what Format does with a parsed list that was
// changed afterwards.
func TestListFormatEdited(t *testing.T) {
	tests := []struct {
		name string
		text string
		edit func(l *List)
		want string
	}{{
		name: "changed value",
		text: listG + listC0 + listP0 + "T\n",
		edit: func(l *List) { l.Client(0).Weight = -3 },
		want: listG + "C=CI:0,ww:-3,co:0,fr:0,Tc:0,Ge:0,Pp:0,Gp:0\n" + listP0 + "T\n",
	}, {
		name: "short to long",
		text: "P=CI:0,Xx:1,PI:0,PT:EP,U0:0,U1:0\n",
		edit: func(l *List) { l.Clients[0].Pools[0].Long = true },
		want: "P=CI:0,Xx:1,PI:0,PT:EP,U0:0,U1:0,Pc:0,Pm:0,Oc:0,Om:0,Nc:0,Nm:0,ps:0,pt:0,pd:0,pr:0,px:0,gs:0,gt:0,fs:0,ft:0,os:0,ot:0\n",
	}, {
		name: "long to short",
		text: "G=Tt:0,Te:0,Cf:0,Af:0,Pf:0,Ta:0,Lm:0,Et:0,Ea:0,Rt:0,Ra:0,Rx:0,Fp:0,Ec:9\n",
		edit: func(l *List) { l.Global.Long = false },
		want: "G=Tt:0,Te:0,Cf:0,Af:0,Pf:0,Ta:0,Lm:0,Et:0,Ea:0,Rt:0,Ra:0,Rx:0,Fp:0\n",
	}, {
		name: "cap dropped",
		text: "C=CI:1,ww:0,ca:0,co:0,fr:0,Tc:0,Ge:0,Pp:0,Gp:0\n",
		edit: func(l *List) { l.Clients[0].HasCap = false },
		want: "C=CI:1,ww:0,co:0,fr:0,Tc:0,Ge:0,Pp:0,Gp:0\n",
	}, {
		name: "odd order kept while it fits",
		text: "T\n" + listG + listC0,
		edit: func(l *List) { l.Global.TotalOps = 8 },
		want: "T\nG=Tt:8,Te:5,Cf:0,Af:0,Pf:0,Ta:0,Lm:0,Et:0,Ea:0,Rt:0,Ra:0,Rx:0,Fp:0\n" + listC0,
	}, {
		name: "odd order dropped when a record goes",
		text: "T\n" + listG + listC0,
		edit: func(l *List) { l.Trailer = nil },
		want: listG + listC0,
	}, {
		name: "odd order dropped when a pool is added",
		text: listP0 + listG + listC0,
		edit: func(l *List) { l.Clients[1].Pools = append(l.Clients[1].Pools, l.Clients[0].Pools[0]) },
		want: listG + listP0 + listC0 + listP0,
	}, {
		name: "garbled shared record rebuilt from fields",
		text: "S=SI:0,PT:ES,U0:1,U1:2,SC:1\nS=SI:0,PT:ES,U0:8899aa,SC:3\n",
		edit: func(l *List) { l.Shared[1].Raw = "" },
		want: "S=SI:0,PT:ES,U0:1,U1:2,SC:1\nS=SI:0,PT:ES,U0:8899aa,SC:3\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := listMustParse(t, []byte(tt.text))
			tt.edit(l)
			if diff := cmp.Diff(tt.want, string(l.Format())); diff != "" {
				t.Errorf("Format (-want +got):\n%s", diff)
			}
		})
	}
}

// TestListAppendFormatAllocs checks that formatting into a buffer with room
// does not allocate.
func TestListAppendFormatAllocs(t *testing.T) {
	l := listMustParse(t, listFixtures(t)["abi-7.5-ex3-xen-4.1-all-long-shared-perf"])
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf = l.AppendFormat(buf[:0]) }); n != 0 {
		t.Errorf("AppendFormat allocates %v times, want 0", n)
	}
}

// TestParseListAllocs checks that parsing allocates per record, not per key.
func TestParseListAllocs(t *testing.T) {
	const clients, pools = 16, 16
	text := listBuildText(clients, pools)
	n := testing.AllocsPerRun(20, func() {
		if _, err := ParseList(text); err != nil {
			t.Fatal(err)
		}
	})
	// The List, G, T, the client slice and one pool slice per client.
	if max := float64(clients + 8); n > max {
		t.Errorf("ParseList of %d clients x %d pools allocates %v times, want at most %v", clients, pools, n, max)
	}
}
