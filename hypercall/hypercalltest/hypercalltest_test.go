package hypercalltest

import (
	"errors"
	"testing"

	"github.com/xentmem/xentmem/hypercall"
)

func TestMemoryResolvesOnlyLiveBuffers(t *testing.T) {
	c := New(func(op hypercall.Op, args hypercall.Args, mem *Memory) (uint64, error) {
		b, err := mem.Bytes(args[0], int(args[1]))
		if err != nil {
			return 0, err
		}
		b[0] = 0xAA
		return uint64(op), nil
	})
	buf, err := c.Alloc(100)
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := c.Hypercall(hypercall.OpSysctl, hypercall.Args{buf.AddrAt(10), 8}); err != nil || rc != 35 {
		t.Fatalf("rc %d err %v", rc, err)
	}
	if buf.Bytes()[10] != 0xAA {
		t.Error("write did not reach the buffer")
	}
	// The page beyond the buffer's length but inside its page is still
	// mapped, as with real hypercall pages; past the page it is a fault.
	if _, err := c.Hypercall(hypercall.OpSysctl, hypercall.Args{buf.Addr() + 4090, 16}); !errors.Is(err, hypercall.EFAULT) {
		t.Errorf("crossing the page end: %v, want EFAULT", err)
	}
	if _, err := c.Hypercall(hypercall.OpSysctl, hypercall.Args{0x10, 1}); !errors.Is(err, hypercall.EFAULT) {
		t.Errorf("wild address: %v, want EFAULT", err)
	}
	if c.Memory().Live() != 1 {
		t.Errorf("live = %d", c.Memory().Live())
	}
	addr := buf.Addr()
	buf.Close()
	if _, err := c.Hypercall(hypercall.OpSysctl, hypercall.Args{addr, 1}); !errors.Is(err, hypercall.EFAULT) {
		t.Errorf("closed buffer: %v, want EFAULT", err)
	}
	if c.Memory().Live() != 0 {
		t.Errorf("live after close = %d", c.Memory().Live())
	}
}

func TestView(t *testing.T) {
	var m Memory
	b, _ := m.Alloc(200)
	defer b.Close()
	s, err := View[hypercall.Sysctl](&m, b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	s.Cmd = 24
	if b.Bytes()[0] != 24 {
		t.Error("view does not alias")
	}
	if _, err := View[hypercall.Sysctl](&m, b.Addr()+4000); !errors.Is(err, hypercall.EFAULT) {
		t.Errorf("view past the page: %v", err)
	}
}
