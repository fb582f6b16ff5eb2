package xenctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var tmemRealGens = []Generation{GenA0, GenA1, GenB, GenC, GenD}

// tmemSimSource is a Xen of generation g whose domain 3 has an ephemeral
// pool 0 with 2 pages, a persistent pool 1 with 3 pages and an ephemeral
// shared pool 2; wide gives the pages 192-bit object ids.
func tmemSimSource(t testing.TB, g Generation, wide bool) *tmemSim {
	v := uint32(specFlags(g, 0))
	oid := func(i int) [3]uint64 {
		if wide {
			return [3]uint64{uint64(i), 0x2222, 0x3333}
		}
		return [3]uint64{0x100 + uint64(i)}
	}
	c := &simClient{weight: 7, compress: true}
	if g <= GenB {
		c.cap = 100
	}
	c.pools[0] = &simPool{flags: v, pages: []simPage{{oid(0), 0, tmemPattern(10)}, {oid(0), 1, tmemPattern(11)}}}
	c.pools[1] = &simPool{flags: v | 1}
	for i := 0; i < 3; i++ {
		c.pools[1].pages = append(c.pools[1].pages, simPage{oid(i), uint32(40 + i), tmemPattern(byte(20 + i))})
	}
	c.pools[2] = &simPool{flags: v | 2, uuid: tmemU}
	return &tmemSim{t: t, gen: g, clients: map[uint16]*simClient{3: c}}
}

type simSummary struct {
	Weight, Cap uint32
	Compress    bool
	Frozen      bool
	Pools       map[int]simPoolSummary
}

type simPoolSummary struct {
	Flags uint32
	UUID  UUID
	Pages []string
}

func summarise(c *simClient) simSummary {
	s := simSummary{Weight: c.weight, Cap: c.cap, Compress: c.compress, Frozen: c.frozen, Pools: map[int]simPoolSummary{}}
	for id, p := range c.pools {
		if p == nil {
			continue
		}
		ps := simPoolSummary{Flags: p.flags, UUID: p.uuid}
		for _, pg := range p.pages {
			ps.Pages = append(ps.Pages, fmt.Sprintf("%x/%d/%x", pg.oid, pg.index, pg.data[:8]))
		}
		s.Pools[id] = ps
	}
	return s
}

// TestTmemSaveRestore saves domain 3 on every generation and restores it
// as domain 5 on every generation.
func TestTmemSaveRestore(t *testing.T) {
	ctx := context.Background()
	for _, from := range tmemRealGens {
		for _, to := range tmemRealGens {
			for _, wide := range []bool{false, true} {
				if wide && from == GenA0 {
					continue
				}
				t.Run(fmt.Sprintf("%s to %s wide=%v", from, to, wide), func(t *testing.T) {
					src := tmemSimSource(t, from, wide)
					var stream bytes.Buffer
					if err := src.client(t).SaveDomain(ctx, 3, &stream); err != nil {
						t.Fatalf("SaveDomain: %v", err)
					}
					if src.clients[3].frozen {
						t.Errorf("client still frozen after SaveDomain")
					}
					want := summarise(tmemSimSource(t, to, wide).clients[3])
					want.Pools[0] = simPoolSummary{Flags: want.Pools[0].Flags} // ephemeral pages are not saved
					if from > GenB || to > GenB {
						want.Cap = 0
					}
					dst := &tmemSim{t: t, gen: to, clients: map[uint16]*simClient{}}
					err := dst.client(t).RestoreDomain(ctx, 5, &stream)
					if wide && to == GenA0 {
						if !errors.Is(err, ErrBadInput) {
							t.Fatalf("RestoreDomain of 192-bit ids on 4.0.1: %v, want ErrBadInput", err)
						}
						return
					}
					if err != nil {
						t.Fatalf("RestoreDomain: %v", err)
					}
					if diff := cmp.Diff(want, summarise(dst.clients[5])); diff != "" {
						t.Errorf("restored client (-want +got):\n%s", diff)
					}
				})
			}
		}
	}
}

func TestTmemSaveDomainEmpty(t *testing.T) {
	for _, g := range tmemRealGens {
		t.Run(g.String(), func(t *testing.T) {
			s := &tmemSim{t: t, gen: g, clients: map[uint16]*simClient{}}
			var stream bytes.Buffer
			if err := s.client(t).SaveDomain(context.Background(), 9, &stream); err != nil {
				t.Fatalf("SaveDomain: %v", err)
			}
			want, _ := appendStreamHeader(nil, saveStream{})
			want = appendPageRecord(want, PageHandle{}, nil)
			if diff := cmp.Diff(want, stream.Bytes()); diff != "" {
				t.Errorf("stream (-want +got):\n%s", diff)
			}
			if err := s.client(t).RestoreDomain(context.Background(), 9, &stream); err != nil {
				t.Fatalf("RestoreDomain: %v", err)
			}
			if s.clients[9] == nil {
				t.Errorf("RestoreDomain created no client")
			}
		})
	}
}

func TestTmemSaveDomainCancelled(t *testing.T) {
	src := tmemSimSource(t, GenD, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := src.client(t).SaveDomain(ctx, 3, &bytes.Buffer{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("SaveDomain with a cancelled context: %v", err)
	}
	if src.clients[3].frozen {
		t.Errorf("client still frozen: SaveEnd was not called")
	}
}

func TestTmemRestoreDomainExisting(t *testing.T) {
	for _, g := range tmemRealGens {
		src := tmemSimSource(t, g, false)
		var stream bytes.Buffer
		if err := src.client(t).SaveDomain(context.Background(), 3, &stream); err != nil {
			t.Fatal(err)
		}
		if err := src.client(t).RestoreDomain(context.Background(), 3, &stream); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: RestoreDomain onto an existing client: %v, want ErrInvalid", g, err)
		}
	}
}

// tmemStreamSample is a valid stream: pools 1 (persistent) and 4 (shared),
// two pages of pool 1.
func tmemStreamSample() []byte {
	b, _ := appendStreamHeader(nil, saveStream{Weight: 7, Cap: 3, Compress: true, Pools: []PoolInfo{
		{ID: 1, Flags: PoolPersistent, Pages: 2}, {ID: 4, Flags: PoolShared, UUID: tmemU}}})
	b = appendPageRecord(b, PageHandle{Pool: 1, Index: 9, OID: tmemOID3}, tmemPattern(1))
	b = appendPageRecord(b, PageHandle{Pool: 1, Index: 10, OID: tmemOID1}, tmemPattern(2))
	return appendPageRecord(b, PageHandle{}, nil)
}

type tmemStreamDump struct {
	Header saveStream
	Pages  []PageHandle
	Data   [][]byte
}

// decodeTmemStream decodes a whole stream.
func decodeTmemStream(b []byte) (tmemStreamDump, error) {
	sr := &streamReader{r: bytes.NewReader(b)}
	var d tmemStreamDump
	var err error
	if d.Header, err = sr.header(); err != nil {
		return d, err
	}
	for {
		page := make([]byte, PageSize)
		h, ok, err := sr.next(page)
		if err != nil || !ok {
			return d, err
		}
		d.Pages, d.Data = append(d.Pages, h), append(d.Data, page)
	}
}

// encodeTmemStream is decodeTmemStream's inverse.
func encodeTmemStream(d tmemStreamDump) []byte {
	b, _ := appendStreamHeader(nil, d.Header)
	for i, h := range d.Pages {
		b = appendPageRecord(b, h, d.Data[i])
	}
	return appendPageRecord(b, PageHandle{}, nil)
}

func TestTmemStreamFormat(t *testing.T) {
	good := tmemStreamSample()
	d, err := decodeTmemStream(good)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(good, encodeTmemStream(d)); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	wantHead := "XTMEMSAV" + "\x01\x00\x00\x00" + "\x02\x00\x00\x00" + "\x07\x00\x00\x00" + "\x03\x00\x00\x00" + "\x01\x00\x00\x00" + "\x00\x00\x00\x00"
	if got := string(good[:32]); got != wantHead {
		t.Errorf("header %q, want %q", got, wantHead)
	}
	mut := func(off int, v byte) []byte {
		b := bytes.Clone(good)
		b[off] = v
		return b
	}
	pageRec := 32 + 2*32
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"bad magic", mut(0, 'x')},
		{"version 2", mut(8, 2)},
		{"17 pools", mut(12, 17)},
		{"unknown header flag", mut(24, 2)},
		{"reserved", mut(28, 1)},
		{"pool flag bit 2", mut(32, 4)},
		{"pool id 16", mut(36, 16)},
		{"duplicate pool id", mut(36+32, 1)},
		{"page of ephemeral pool", mut(pageRec, 4)},
		{"page of unknown pool", mut(pageRec, 2)},
		{"truncated page", good[:pageRec+32+100]},
		{"no end record", good[:len(good)-32]},
		{"end record with data", mut(len(good)-1, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeTmemStream(tc.in); !errors.Is(err, ErrBadInput) {
				t.Errorf("decode: %v, want ErrBadInput", err)
			}
		})
	}
}

// FuzzTmemSaveStream checks that the stream decoder does not panic and that
// whatever it accepts encodes back to a stream that decodes the same.
func FuzzTmemSaveStream(f *testing.F) {
	good := tmemStreamSample()
	f.Add(good)
	f.Add(good[:100])
	f.Add(append(appendPageRecord(tmemMust(appendStreamHeader(nil, saveStream{})), PageHandle{}, nil), 1, 2, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeTmemStream(b)
		if err != nil {
			return
		}
		d2, err := decodeTmemStream(encodeTmemStream(d))
		if err != nil {
			t.Fatalf("re-encoded stream does not decode: %v", err)
		}
		if diff := cmp.Diff(d, d2, cmp.AllowUnexported(saveStream{})); diff != "" {
			t.Errorf("round trip (-first +second):\n%s", diff)
		}
	})
}

func tmemMust[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
