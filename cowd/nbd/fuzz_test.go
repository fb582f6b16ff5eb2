package nbd

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type nullDevice struct{}

func (nullDevice) ReadAt(p []byte, _ int64) (int, error)  { return len(p), nil }
func (nullDevice) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }
func (nullDevice) Sync() error                            { return nil }
func (nullDevice) Trim(int64, int64) error                { return nil }

// clientOption encodes one client option, for seeds.
func clientOption(opt uint32, data []byte) []byte {
	b := binary.BigEndian.AppendUint64(nil, magicOpt)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

func encodeInfoRequest(q infoRequest) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(q.Name)))
	b = append(b, q.Name...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(q.Infos)))
	for _, i := range q.Infos {
		b = binary.BigEndian.AppendUint16(b, i)
	}
	return b
}

func encodeMetaRequest(q metaRequest) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(q.Name)))
	b = append(b, q.Name...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(q.Queries)))
	for _, s := range q.Queries {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

// FuzzHandshake feeds arbitrary client bytes to the handshake. It must
// never panic or hang, and whatever it negotiates must name an export.
func FuzzHandshake(f *testing.F) {
	flags := binary.BigEndian.AppendUint32(nil, 3)
	seq := func(parts ...[]byte) []byte { return bytes.Join(append([][]byte{flags}, parts...), nil) }
	f.Add(seq(clientOption(optGo, encodeInfoRequest(infoRequest{Name: "d", Infos: []uint16{3, 1}}))))
	f.Add(seq(clientOption(optStructuredReply, nil),
		clientOption(optSetMetaContext, encodeMetaRequest(metaRequest{Name: "d", Queries: []string{"base:allocation"}})),
		clientOption(optListMetaContext, encodeMetaRequest(metaRequest{Name: "", Queries: []string{"base:"}})),
		clientOption(optInfo, encodeInfoRequest(infoRequest{Name: ""})),
		clientOption(optGo, encodeInfoRequest(infoRequest{Name: "d"}))))
	f.Add(seq(clientOption(optList, nil), clientOption(optStartTLS, nil), clientOption(99, []byte{1}), clientOption(optAbort, nil)))
	f.Add(seq(clientOption(optExportName, []byte("d"))))
	f.Add([]byte{0, 0, 0, 1})
	exports := []Export{{Name: "d", Device: nullDevice{}, Size: 1 << 20}}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(bytes.NewReader(in))
		w := bufio.NewWriter(io.Discard)
		s, err := handshake(exports, r, w)
		if err == nil && s.export == nil {
			t.Fatal("handshake succeeded without an export")
		}
	})
}

// FuzzOptionData checks the GO/INFO and meta context decoders: no panic,
// and a decoded request survives encode and decode.
func FuzzOptionData(f *testing.F) {
	f.Add(encodeInfoRequest(infoRequest{Name: "disk", Infos: []uint16{0, 1, 2, 3}}), true)
	f.Add(encodeMetaRequest(metaRequest{Name: "disk", Queries: []string{"base:allocation", "qemu:"}}), false)
	f.Add([]byte{0, 0, 0, 5, 'a'}, true)
	f.Fuzz(func(t *testing.T, in []byte, info bool) {
		if info {
			q, err := parseInfoRequest(in)
			if err != nil {
				return
			}
			q2, err := parseInfoRequest(encodeInfoRequest(q))
			if err != nil {
				t.Fatalf("re-encoded info request: %v", err)
			}
			if diff := cmp.Diff(q, q2, cmp.AllowUnexported(infoRequest{})); diff != "" {
				t.Fatalf("round trip (-first +second):\n%s", diff)
			}
			return
		}
		q, err := parseMetaRequest(in)
		if err != nil {
			return
		}
		q2, err := parseMetaRequest(encodeMetaRequest(q))
		if err != nil {
			t.Fatalf("re-encoded meta request: %v", err)
		}
		if diff := cmp.Diff(q, q2, cmp.AllowUnexported(metaRequest{})); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// FuzzRequest decodes and validates arbitrary request headers against
// sessions of every kind: no panic, and an accepted request lies inside
// the export.
func FuzzRequest(f *testing.F) {
	req := func(flags, typ uint16, off uint64, n uint32) []byte {
		b := binary.BigEndian.AppendUint32(nil, magicRequest)
		b = binary.BigEndian.AppendUint16(b, flags)
		b = binary.BigEndian.AppendUint16(b, typ)
		b = binary.BigEndian.AppendUint64(b, 7)
		b = binary.BigEndian.AppendUint64(b, off)
		return binary.BigEndian.AppendUint32(b, n)
	}
	f.Add(req(0, cmdRead, 0, 4096), uint8(0))
	f.Add(req(cmdFlagFUA, cmdWrite, 1<<20-512, 512), uint8(1))
	f.Add(req(cmdFlagReqOne, cmdBlockStatus, 0, 1<<20), uint8(3))
	f.Add(req(0, cmdRead, 1<<63, 1<<31), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, mode uint8) {
		var r request
		if err := decodeRequest(in, &r); err != nil {
			return
		}
		e := &Export{Name: "d", Device: nullDevice{}, Size: 1 << 20, ReadOnly: mode&4 != 0,
			BlockSize: BlockSizes{Min: 512}}
		s := &session{export: e, structured: mode&1 != 0, baseAlloc: mode&2 != 0, sizesAgreed: mode&8 != 0}
		if s.check(&r) == 0 && r.typ != cmdFlush && r.typ != cmdDisc &&
			(r.off > uint64(e.Size) || uint64(r.length) > uint64(e.Size)-r.off) {
			t.Fatalf("accepted %+v outside the export", r)
		}
	})
}
