package xenctl

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/hypercall/hypercalltest"
)

// tmemAligned returns n zero bytes of hypercall memory (8-byte aligned, as
// the structs need).
func tmemAligned(t testing.TB, n int) []byte {
	t.Helper()
	var m hypercalltest.Memory
	b, err := m.Alloc(n)
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func tmemUnhex(t testing.TB, s string) []byte {
	t.Helper()
	raw, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	b := tmemAligned(t, len(raw))
	copy(b, raw)
	return b
}

func TestTmemABIFor(t *testing.T) {
	type row struct {
		Gen                 Generation
		Op                  hypercall.Op
		Off, Size           int
		TmemOp, Handle, Ver int
	}
	want := []row{
		{GenA0, hypercall.OpTmem, scratchTmemOp, 40, 40, 16, 0},
		{GenA1, hypercall.OpTmem, scratchTmemOp, 56, 56, 32, 1},
		{GenB, hypercall.OpSysctl, scratchSysctl, 136, 56, 32, 1},
		{GenC, hypercall.OpSysctl, scratchSysctl, 136, 56, 32, 1},
		{GenD, hypercall.OpSysctl, scratchSysctl, 136, 56, 32, 1},
	}
	var got []row
	for _, g := range tmemRealGens {
		a := abiFor(g)
		op, off, size := a.ctrlCall()
		got = append(got, row{a.generation(), op, off, size, a.tmemOpSize(), a.handleSize(), int(a.specVersion())})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if abiFor(GenNone) != nil {
		t.Errorf("abiFor(GenNone) != nil")
	}
}

// TestTmemSubops pins which control operations each generation numbers,
// and how (xen-tmem-abi.md §4.2, §6.4).
func TestTmemSubops(t *testing.T) {
	want := map[Generation]map[ctrlOp]uint32{}
	ab := map[ctrlOp]uint32{ctlThaw: 0, ctlFreeze: 1, ctlFlush: 2, ctlDestroy: 3, ctlList: 4, ctlSetWeight: 5,
		ctlSetCap: 6, ctlSetCompress: 7, ctlFreeable: 8, ctlSaveBegin: 10, ctlGetPoolFlags: 16, ctlGetPoolNPages: 17,
		ctlGetPoolUUID: 18, ctlSaveNextPage: 19, ctlSaveNextInv: 20, ctlSaveEnd: 21, ctlRestoreBegin: 30,
		ctlRestorePutPage: 32, ctlRestoreFlushPage: 33}
	c := map[ctrlOp]uint32{ctlThaw: 0, ctlFreeze: 1, ctlFlush: 2, ctlDestroy: 3, ctlList: 4, ctlGetClientInfo: 5,
		ctlSetClientInfo: 6, ctlGetPools: 7, ctlFreeable: 8, ctlSaveBegin: 10, ctlSaveNextPage: 19, ctlSaveNextInv: 20,
		ctlSaveEnd: 21, ctlRestoreBegin: 30, ctlRestorePutPage: 32, ctlRestoreFlushPage: 33}
	d := map[ctrlOp]uint32{ctlSetPools: 9, ctlSetAuth: 11}
	for k, v := range c {
		d[k] = v
	}
	want[GenA0], want[GenA1], want[GenB], want[GenC], want[GenD] = ab, ab, ab, c, d
	for _, g := range tmemRealGens {
		got := map[ctrlOp]uint32{}
		for op := ctrlOp(0); op < ctlCount; op++ {
			if n, ok := abiFor(g).subop(op); ok {
				got[op] = n
			}
		}
		if diff := cmp.Diff(want[g], got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", g, diff)
		}
	}
}

func TestTmemEncodeErrors(t *testing.T) {
	short := tmemAligned(t, 39)
	img := tmemAligned(t, sysctlSize)
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"A0 ctrl short image", encodeA0Ctrl(short, ctrlReq{op: ctlFreeze}), ErrBadInput},
		{"A0 ctrl wide oid", encodeA0Ctrl(img, ctrlReq{op: ctlRestoreFlushPage, oid: tmemOID3}), ErrBadInput},
		{"A0 gen wide oid", encodeA0Gen(img, genReq{cmd: 4, oid: tmemOID3}), ErrBadInput},
		{"A1 ctrl short", encodeA1Ctrl(img[:55], ctrlReq{op: ctlFreeze}), ErrBadInput},
		{"A1 no GET_POOLS", encodeA1Ctrl(img, ctrlReq{op: ctlGetPools}), ErrNotSupported},
		{"B no SET_AUTH", encodeBCtrl(img, 0xD, ctrlReq{op: ctlSetAuth}), ErrNotSupported},
		{"C no SET_CAP", encodeCDCtrl(GenC, img, 0xE, ctrlReq{op: ctlSetCap}), ErrNotSupported},
		{"C no SET_POOLS", encodeCDCtrl(GenC, img, 0xE, ctrlReq{op: ctlSetPools}), ErrNotSupported},
		{"D no SET_WEIGHT", encodeCDCtrl(GenD, img, 0x12, ctrlReq{op: ctlSetWeight}), ErrNotSupported},
		{"sysctl short", encodeCDCtrl(GenD, img[:135], 0x12, ctrlReq{op: ctlFreeze}), ErrBadInput},
		{"client record short", encodeClientRecord(img[:19], ClientInfo{}), ErrBadInput},
		{"pool record short", encodePoolRecord(img[:31], 0, 0, UUID{}), ErrBadInput},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
}

// TestTmemDecodeRecords decodes records a real Xen 4.12.4 wrote
// (reference/xen-golden/xen-4.12.4-tmem-pv-dom0.txt).
func TestTmemDecodeRecords(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want ClientInfo
	}{
		{"0100000010000000000000000000000000000000", ClientInfo{Version: 1, MaxPools: 16}},
		{"0100000010000000020000000200000007000000", ClientInfo{Version: 1, MaxPools: 16, Pools: 2, Compress: true, Weight: 7}},
		{"0100000010000000020000000100000007000000", ClientInfo{Version: 1, MaxPools: 16, Pools: 2, Frozen: true, Weight: 7}},
	} {
		b := tmemUnhex(t, tc.raw)
		got, err := decodeClientRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.raw, diff)
		}
		back := tmemAligned(t, tmemClientSize)
		if err := encodeClientRecord(back, got); err != nil || hex.EncodeToString(back) != tc.raw {
			t.Errorf("encodeClientRecord(%+v) = %x, %v; want %s", got, back, err, tc.raw)
		}
	}
	pools := tmemUnhex(t, "0000000100000000000000000000000000000000000000000000000000000000"+
		"0100000101000000000000000000000000000000000000000000000000000000")
	got, err := decodePoolRecords(pools, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []PoolInfo{{ID: 0, Flags: 0x01000000}, {ID: 1, Flags: 0x01000001}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pool records (-want +got):\n%s", diff)
	}
	if _, err := decodePoolRecords(pools, 3); !errors.Is(err, ErrBadInput) {
		t.Errorf("3 records in 64 bytes: %v", err)
	}
	if _, err := decodePoolRecords(make([]byte, 17*32), 17); !errors.Is(err, ErrBadInput) {
		t.Errorf("17 records: %v", err)
	}
	auth := tmemAligned(t, 32)
	if err := encodeAuthRecord(auth, tmemU, true); err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(auth), "0400000000000000"+"0000000000000000"+"ffeeddccbbaa9988"+"7766554433221100"; got != want {
		t.Errorf("auth record %s, want %s", got, want)
	}
}

// FuzzTmemClientRecord checks decode → encode → decode of struct
// xen_tmem_client records.
func FuzzTmemClientRecord(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 16, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 7, 0, 0, 0})
	f.Add(make([]byte, 19))
	f.Fuzz(func(t *testing.T, raw []byte) {
		b := tmemAligned(t, max(len(raw), 1))
		copy(b, raw)
		c, err := decodeClientRecord(b[:len(raw)])
		if err != nil {
			return
		}
		back := tmemAligned(t, tmemClientSize)
		if err := encodeClientRecord(back, c); err != nil {
			t.Fatal(err)
		}
		c2, err := decodeClientRecord(back)
		if err != nil || c2 != c {
			t.Fatalf("round trip: %+v → %+v, %v", c, c2, err)
		}
	})
}

func TestTmemPoolUUIDEndsSave(t *testing.T) {
	for v, want := range map[string]bool{
		"4.0.0": true, "4.0.4": true, "4.1.0": true, "4.1.3": true, "4.1.4": false, "4.1.6.1": false,
		"4.2.0": true, "4.2-rc3": true, "4.2.1": false, "4.3.0": false, "4.5.5": false, "4.7.6": false,
	} {
		ver, err := ParseVersion(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := poolUUIDEndsSave(ver); got != want {
			t.Errorf("poolUUIDEndsSave(%s) = %v, want %v", v, got, want)
		}
	}
}

func TestTmemListBufferSize(t *testing.T) {
	for _, tc := range []struct {
		cli     uint16
		clients int
		want    int
	}{
		{3, 1, 20480},             // 17 KiB, page-rounded
		{AllClients, 0, 20480},    // 18 KiB
		{AllClients, 1, 36864},    // 35 KiB
		{AllClients, 64, 1134592}, // 1106 KiB
	} {
		if got := listBufferSize(tc.cli, tc.clients); got != tc.want {
			t.Errorf("listBufferSize(%#x, %d) = %d, want %d", tc.cli, tc.clients, got, tc.want)
		}
	}
}

func TestTmemParseListClient(t *testing.T) {
	const long41 = "G=Tt:1\nS=SI:0,PT:ES,U0:8899aabbccddeeff,U1:11223344556677,SC:1,SC:2\n" +
		"C=CI:1,ww:0,ca:0,co:0,fr:0,Tc:81230042,Ge:2210,Pp:0,Gp:0,Ec:4820\n" +
		"P=CI:1,PI:0,PT:EP,U0:0,U1:0,Pc:4520\n" +
		"P=CI:1,PI:1,PT:ES,U0:8899aabbccddeeff,U1:11223344556677,Pc:300\n" +
		"C=CI:2,ww:-1,ca:-2,co:1,fr:1,Tc:1204400,Ge:0,Pp:0,Gp:0\n" +
		"P=CI:2,PI:1,PT:ES,U0:8899aabbccddeeff,U1:11223344556677\nT=Gn:2210\n"
	for _, tc := range []struct {
		name string
		text string
		cli  uint16
		want listClientLines
		err  error
	}{
		{"4.12 short", "C=CI:0,ww:7,co:0,fr:1,Tc:0,Ge:0,Pp:0,Gp:0\nP=CI:0,PI:0,PT:EP,U0:0,U1:0\n", 0,
			listClientLines{ClientInfo{MaxPools: 16, Pools: 1, Weight: 7, Frozen: true}, []UUID{{}}}, nil},
		{"4.1 long, first client", long41, 1,
			listClientLines{ClientInfo{MaxPools: 16, Pools: 2}, []UUID{{}, tmemU}}, nil},
		{"4.1 long, second client, %d of a large weight", long41, 2,
			listClientLines{ClientInfo{MaxPools: 16, Pools: 1, Weight: 0xFFFFFFFF, Cap: 0xFFFFFFFE, Compress: true, Frozen: true}, []UUID{tmemU}}, nil},
		{"absent client", long41, 5, listClientLines{}, ErrListFormat},
		{"no weight", "C=CI:3,co:0,fr:0\n", 3, listClientLines{}, ErrListFormat},
		{"bad uuid", "C=CI:3,ww:0,co:0,fr:0\nP=CI:3,PI:0,PT:ES,U0:xyz,U1:0\n", 3, listClientLines{}, ErrListFormat},
		{"weight out of range", "C=CI:3,ww:4294967296,co:0,fr:0\n", 3, listClientLines{}, ErrListFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseListClient([]byte(tc.text), tc.cli)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(listClientLines{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzTmemParseListClient(f *testing.F) {
	f.Add([]byte("C=CI:3,ww:7,ca:1,co:1,fr:0\nP=CI:3,PI:0,PT:ES,U0:ff,U1:1\nT\n"), uint16(3))
	f.Add([]byte("G=\nC=CI:3\nC=CI:4,ww:-1,co:0,fr:0\n"), uint16(4))
	f.Fuzz(func(t *testing.T, text []byte, cli uint16) {
		got, err := parseListClient(text, cli)
		if err == nil && got.info.Pools != len(got.uuids) {
			t.Fatalf("%d pools but %d uuids", got.info.Pools, len(got.uuids))
		}
	})
}

func TestTmemPoolFlags(t *testing.T) {
	for _, tc := range []struct {
		spec PoolSpec
		gen  Generation
		want PoolFlags
		text string
	}{
		{PoolSpec{}, GenA0, 0, "ephemeral|private|v0"},
		{PoolSpec{Persistent: true}, GenA0, 1, "persistent|private|v0"},
		{PoolSpec{}, GenA1, 0x01000000, "ephemeral|private|v1"},
		{PoolSpec{Persistent: true}, GenD, 0x01000001, "persistent|private|v1"},
		{PoolSpec{Shared: true, UUID: tmemU}, GenB, 0x01000002, "ephemeral|shared|v1"},
	} {
		f := tc.spec.Flags(tc.gen)
		if f != tc.want || f.String() != tc.text {
			t.Errorf("%+v on %s: %#x %q, want %#x %q", tc.spec, tc.gen, uint32(f), f, uint32(tc.want), tc.text)
		}
		if f.Persistent() != tc.spec.Persistent || f.Shared() != tc.spec.Shared || f.PageShift() != 0 {
			t.Errorf("%#x: accessors disagree with %+v", uint32(f), tc.spec)
		}
	}
	if got := PoolFlags(0x01000014).String(); got != "ephemeral|private|v1|0x14" {
		t.Errorf("String of odd flags: %q", got)
	}
}

func TestTmemClosedClient(t *testing.T) {
	_, cl, _ := newTmemFake(t, GenD, nil)
	cl.Close()
	if err := cl.Freeze(3); !errors.Is(err, hypercall.ErrBufferClosed) {
		t.Errorf("Freeze after Close: %v", err)
	}
	if _, err := cl.GetPage(0, tmemOID1, 0, 0); !errors.Is(err, hypercall.ErrBufferClosed) {
		t.Errorf("GetPage after Close: %v", err)
	}
}

// TestTmemErrorText checks that errors name the client or pool.
func TestTmemErrorText(t *testing.T) {
	_, cl, _ := newTmemFake(t, GenD, func(int, *tmemCall) (uint64, error) { return 0, hypercall.EPERM })
	for _, tc := range []struct {
		err  error
		want string
	}{
		{cl.Freeze(7), "xenctl: tmem freeze (client 7): EPERM (operation not permitted): " + hintNoClient},
		{cl.Thaw(AllClients), "xenctl: tmem thaw (all clients): EPERM (operation not permitted): " + hintNoClient},
		{cl.PutPage(4, tmemOID1, 0, 0), "xenctl: tmem put page (pool 4): EPERM"},
		{cl.SetCap(3, 1), "xenctl: tmem set cap: not supported by Xen 4.12.4 (available in Xen 4.0–4.7)"},
	} {
		if tc.err == nil || len(tc.err.Error()) < len(tc.want) || tc.err.Error()[:len(tc.want)] != tc.want {
			t.Errorf("error %q, want prefix %q", tc.err, tc.want)
		}
	}
}
