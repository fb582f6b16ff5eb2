package nbd_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/xentmem/xentmem/cowd/nbd"
	"github.com/xentmem/xentmem/internal/cowdtest"
)

// kernelRequest encodes a request header as the kernel client sends it:
// type is (flags << 16) | command.
func kernelRequest(typ, flags uint16, cookie, off uint64, length uint32) []byte {
	be := binary.BigEndian
	b := be.AppendUint32(nil, 0x25609513)
	b = be.AppendUint16(b, flags)
	b = be.AppendUint16(b, typ)
	b = be.AppendUint64(b, cookie)
	b = be.AppendUint64(b, off)
	return be.AppendUint32(b, length)
}

// simpleReply reads a simple reply and returns its error and cookie.
func simpleReply(t *testing.T, r io.Reader) (errno uint32, cookie uint64) {
	t.Helper()
	var h [16]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatalf("reply: %v", err)
	}
	if m := binary.BigEndian.Uint32(h[0:]); m != 0x67446698 {
		t.Fatalf("reply magic %#x: not a simple reply", m)
	}
	return binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint64(h[8:])
}

func TestServeTransmission(t *testing.T) {
	dev := newMemDevice(1 << 20)
	srv, err := nbd.NewServer(&nbd.Config{Logger: zaptest.NewLogger(t), Exports: []nbd.Export{
		{Name: "a", Device: newMemDevice(4096), Size: 4096},
		{Name: "b", Device: dev, Size: 1 << 20},
	}})
	if err != nil {
		t.Fatal(err)
	}
	client, server := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- srv.ServeTransmission(context.Background(), server, "b") }()

	data := bytes.Repeat([]byte("kernel!!"), 512) // 4 KiB
	// No handshake: the first bytes on the wire are a request.
	client.Write(append(kernelRequest(cowdtest.CmdWrite, cowdtest.FlagFUA, 1, 8192, 4096), data...))
	if e, c := simpleReply(t, client); e != 0 || c != 1 {
		t.Fatalf("WRITE: errno %d cookie %d", e, c)
	}
	client.Write(kernelRequest(cowdtest.CmdRead, 0, 2, 8192, 4096))
	if e, c := simpleReply(t, client); e != 0 || c != 2 {
		t.Fatalf("READ: errno %d cookie %d", e, c)
	}
	got := make([]byte, 4096)
	if _, err := io.ReadFull(client, got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("READ data differs (%v)", err)
	}
	client.Write(kernelRequest(cowdtest.CmdFlush, 0, 3, 0, 0))
	if e, _ := simpleReply(t, client); e != 0 || dev.syncs.Load() < 2 {
		t.Errorf("FLUSH: errno %d, %d syncs", e, dev.syncs.Load())
	}
	// No metadata context was negotiated, and misalignment is allowed.
	client.Write(kernelRequest(cowdtest.CmdBlockStatus, 0, 4, 0, 4096))
	if e, _ := simpleReply(t, client); e != 22 {
		t.Errorf("BLOCK_STATUS: errno %d, want EINVAL", e)
	}
	client.Write(kernelRequest(cowdtest.CmdRead, 0, 5, 8193, 3))
	if e, _ := simpleReply(t, client); e != 0 {
		t.Errorf("unaligned READ: errno %d", e)
	}
	io.ReadFull(client, got[:3])
	client.Write(kernelRequest(cowdtest.CmdDisc, 0, 6, 0, 0))
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeTransmission: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeTransmission did not return after DISC")
	}

	client, server = net.Pipe()
	defer client.Close()
	if err := srv.ServeTransmission(context.Background(), server, "nope"); !errors.Is(err, nbd.ErrConfig) {
		t.Errorf("unknown export: %v", err)
	}
	// The default export, and ctx ending the connection.
	client, server = net.Pipe()
	defer client.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- srv.ServeTransmission(ctx, server, "") }()
	client.Write(kernelRequest(cowdtest.CmdRead, 0, 7, 0, 4096))
	if e, _ := simpleReply(t, client); e != 0 {
		t.Errorf("READ of the default export: errno %d", e)
	}
	io.ReadFull(client, got)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeTransmission after cancel: %v", err)
	}
}
