package hypercall

import (
	"errors"
	"testing"
)

func TestView(t *testing.T) {
	mem := make([]byte, 200)
	b := NewBuffer(mem, nil)
	s, err := View[Sysctl](b, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.Cmd, s.InterfaceVersion = 3, 0x15
	if mem[0] != 3 || mem[4] != 0x15 {
		t.Errorf("view does not alias the buffer: % x", mem[:8])
	}
	if _, err := View[Sysctl](b, 100); err == nil {
		t.Error("136-byte struct at offset 100 of 200 bytes: want an error")
	}
	if _, err := View[Sysctl](b, 4); err == nil {
		t.Error("misaligned view: want an error")
	}
	if _, err := View[Sysctl](b, -8); err == nil {
		t.Error("negative offset: want an error")
	}
	if b.Len() != 200 || b.AddrAt(8) != b.Addr()+8 {
		t.Error("Len/AddrAt")
	}
}

func TestBufferClose(t *testing.T) {
	freed := 0
	b := NewBuffer(make([]byte, 64), func([]byte) error { freed++; return nil })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil || freed != 1 {
		t.Errorf("second Close: err %v, freed %d times", err, freed)
	}
	if _, err := View[PrivcmdHypercall](b, 0); !errors.Is(err, ErrBufferClosed) {
		t.Errorf("View after Close = %v", err)
	}
	if b.Addr() != 0 {
		t.Error("closed buffer has an address")
	}
}

func TestSizeOf(t *testing.T) {
	if SizeOf[Sysctl]() != 136 || SizeOf[TmemOp]() != 56 || SizeOf[TmemOpA0]() != 40 {
		t.Error("SizeOf")
	}
}
