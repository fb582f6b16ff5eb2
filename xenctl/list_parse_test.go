package xenctl

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	listG  = "G=Tt:7,Te:5,Cf:0,Af:0,Pf:0,Ta:0,Lm:0,Et:0,Ea:0,Rt:0,Ra:0,Rx:0,Fp:0\n"
	listC0 = "C=CI:0,ww:7,co:0,fr:0,Tc:0,Ge:0,Pp:0,Gp:0\n"
	listP0 = "P=CI:0,PI:0,PT:EP,U0:0,U1:0\n"
	listP1 = "P=CI:0,PI:1,PT:PP,U0:0,U1:0\n"
)

// TestParseListQuirks checks that odd but possible texts parse, format back
// unchanged, and give the expected records.
func TestParseListQuirks(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		check func(l *List) any
		want  any
	}{{
		name:  "records out of order",
		text:  "T\n" + listC0 + listG + listP0,
		check: func(l *List) any { return []any{l.Global.TotalOps, len(l.Client(0).Pools), l.Trailer != nil} },
		want:  []any{uint64(7), 1, true},
	}, {
		name:  "shared after clients",
		text:  listG + listC0 + "S=SI:0,PT:ES,U0:a,U1:b,SC:0\n" + listP0 + "T\n",
		check: func(l *List) any { return []any{l.Shared[0].UUID, l.Shared[0].Garbled, len(l.Client(0).Pools)} },
		want:  []any{[2]uint64{10, 11}, false, 1},
	}, {
		name: "pools before any client",
		text: "P=CI:5,PI:0,PT:EP,U0:0,U1:0\nP=CI:5,PI:1,PT:PP,U0:0,U1:0\n" + listC0 + listP0,
		check: func(l *List) any {
			return []any{len(l.Clients), l.Clients[0].Implicit, l.Client(5).Pools[1].Persistent(), len(l.Client(0).Pools)}
		},
		want: []any{2, true, true, 1},
	}, {
		name:  "pool after the trailer",
		text:  listG + listC0 + listP0 + "T\n" + listP1,
		check: func(l *List) any { return len(l.Client(0).Pools) },
		want:  2,
	}, {
		name:  "unknown keys keep their place",
		text:  "C=CI:4,Zz:abc,ww:9,co:1,fr:0,Tc:0,Ge:0,Pp:0,Gp:0,Q:\n",
		check: func(l *List) any { return []any{l.Client(4).Weight, l.Client(4).Extra} },
		want:  []any{int64(9), []ListKV{{Key: "Zz", Value: "abc", Pos: 1}, {Key: "Q", Value: "", Pos: 9}}},
	}, {
		name:  "repeated key goes to Extra",
		text:  "G=Tt:1,Tt:2,Tt:x\n",
		check: func(l *List) any { return []any{l.Global.TotalOps, len(l.Global.Extra)} },
		want:  []any{uint64(1), 2},
	}, {
		name:  "keys out of order",
		text:  "P=PT:ES,CI:2,U1:ff,PI:3,U0:1\n",
		check: func(l *List) any { p := l.Client(2).Pools[0]; return []any{p.ID, p.UUID, p.Shared()} },
		want:  []any{int64(3), [2]uint64{1, 255}, true},
	}, {
		name:  "negative values where Xen prints signed",
		text:  "C=CI:1,ww:-1,ca:-2,co:0,fr:0,Tc:0,Ge:-9223372036854775808,Pp:0,Gp:0\n",
		check: func(l *List) any { c := l.Client(1); return []any{c.Weight, c.Cap, c.EphGets} },
		want:  []any{int64(-1), int64(-2), int64(-9223372036854775808)},
	}, {
		name:  "largest values",
		text:  "P=CI:65535,PI:0,PT:PS,U0:ffffffffffffffff,U1:0,Nc:18446744073709551615\n",
		check: func(l *List) any { p := l.Client(65535).Pools[0]; return []any{p.UUID[0], p.Nodes} },
		want:  []any{^uint64(0), ^uint64(0)},
	}, {
		name:  "4.0.0 global long form ends after Pm",
		text:  "G=Tt:1,Te:0,Cf:0,Af:0,Pf:0,Ta:0,Lm:0,Et:0,Ea:0,Rt:0,Ra:0,Rx:0,Fp:0,Ec:1,Em:2,Oc:3,Om:4,Nc:5,Nm:6,Pc:7,Pm:8\nT\n",
		check: func(l *List) any { return []any{l.Global.Long, l.Global.MaxPageDescs} },
		want:  []any{true, int64(8)},
	}, {
		name:  "empty records",
		text:  "G=\nC=\nS=\nT=\n",
		check: func(l *List) any { return []any{l.Trailer.Perf, len(l.Clients), l.Shared[0].Garbled} },
		want:  []any{true, 1, false},
	}, {
		name:  "trailer items that are not counters",
		text:  "T=Gn:1,Gt:2,Gx:3,Gm:4,Zn:1,Zt:x,Zx:1,Zm:1,Pn:0,Pt:0,Px:-1,Pm:2147483647\n",
		check: func(l *List) any { return []any{len(l.Trailer.Counters), len(l.Trailer.Extra), l.Trailer.Counters[1]} },
		want:  []any{2, 4, ListCycles{Op: 'P', Max: -1, Min: 2147483647}},
	}, {
		name:  "a garbled shared line alone",
		text:  "S=SI:0,PT:E\n",
		check: func(l *List) any { s := l.Shared[0]; return []any{s.Garbled, s.Raw, s.Index} },
		want:  []any{true, "S=SI:0,PT:E", int64(0)},
	}, {
		name:  "a shared line that is not key:value at all",
		text:  "S=,,::,U\n" + listC0,
		check: func(l *List) any { return []any{l.Shared[0].Garbled, l.Client(0).Weight} },
		want:  []any{true, int64(7)},
	}, {
		name:  "shared line with sharers out of place",
		text:  "S=SI:1,SC:3,PT:ES,U0:1,U1:2,SC:4\n",
		check: func(l *List) any { return []any{l.Shared[0].Sharers, l.Shared[0].Garbled} },
		want:  []any{[]uint16{3, 4}, false},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := listMustParse(t, []byte(tt.text))
			if diff := cmp.Diff(tt.text, string(l.Format())); diff != "" {
				t.Errorf("Format (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, tt.check(l)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseListNoFinalNewline(t *testing.T) {
	l := listMustParse(t, []byte(listG+"T"))
	if got, want := string(l.Format()), listG+"T\n"; got != want {
		t.Errorf("Format = %q, want %q", got, want)
	}
}

func TestParseListErrors(t *testing.T) {
	tests := []struct{ name, text string }{
		{"empty line", listG + "\nT\n"},
		{"unknown record", listG + "X=1\n"},
		{"no equals sign", "G\n"},
		{"trailer with text", "Tx\n"},
		{"item without colon", "G=Tt\n"},
		{"empty key", "G=:1\n"},
		{"empty item", "G=Tt:1,\n"},
		{"bad number", "G=Tt:x\n"},
		{"leading zero", "G=Tt:01\n"},
		{"sign on unsigned", "G=Tt:-1\n"},
		{"plus sign", "C=ww:+1\n"},
		{"minus zero", "C=ww:-0\n"},
		{"uint64 overflow", "G=Tt:18446744073709551616\n"},
		{"int64 overflow", "C=ww:9223372036854775808\n"},
		{"int64 underflow", "C=ww:-9223372036854775809\n"},
		{"domid too big", "C=CI:65536\n"},
		{"flag not 0 or 1", "C=fr:2\n"},
		{"uppercase hex", "P=U0:FF\n"},
		{"padded hex", "P=U0:0f\n"},
		{"hex too long", "P=U0:10000000000000000\n"},
		{"bad pool type", "P=PT:XP\n"},
		{"short pool type", "P=PT:E\n"},
		{"second G", listG + listG},
		{"second T", "T\nT=\n"},
		{"trailer item without colon", "T=Gn\n"},
		{"error after a good line", listG + listC0 + "P=CI:0,PI:z\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseList([]byte(tt.text))
			if !errors.Is(err, ErrListFormat) {
				t.Fatalf("ParseList(%q) = %v, %v; want an error wrapping ErrListFormat", tt.text, l, err)
			}
			if l != nil {
				t.Errorf("ParseList returned a list with the error")
			}
		})
	}
}

func TestListPoolType(t *testing.T) {
	tests := []struct {
		typ              ListPoolType
		want             string
		persist, sharing bool
	}{
		{0, "EP", false, false},
		{ListPoolShared, "ES", false, true},
		{ListPoolPersistent, "PP", true, false},
		{ListPoolPersistent | ListPoolShared, "PS", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			text, err := tt.typ.MarshalText()
			got := []any{tt.typ.String(), string(text), err, tt.typ.Persistent(), tt.typ.Shared()}
			if diff := cmp.Diff([]any{tt.want, tt.want, nil, tt.persist, tt.sharing}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			p, ok := listParsePoolType([]byte(tt.want))
			if !ok || p != tt.typ {
				t.Errorf("listParsePoolType(%q) = %v, %v", tt.want, p, ok)
			}
		})
	}
}
