package workload

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/xentmem/xentmem/hypercall"
)

// Tmem issues guest tmem operations (hypercall 38) for the domain its
// Caller belongs to.
type Tmem struct {
	c   hypercall.Caller
	buf *hypercall.Buffer
	a0  bool // Xen 4.0.0/4.0.1: 40-byte tmem_op, spec version 0
}

// NewTmem reads the Xen version through c to choose the tmem_op layout.
func NewTmem(c hypercall.Caller) (*Tmem, error) {
	buf, err := c.Alloc(64)
	if err != nil {
		return nil, fmt.Errorf("workload: tmem buffer: %w", err)
	}
	v, err := c.Hypercall(hypercall.OpXenVersion, hypercall.Args{hypercall.XENVER_version})
	if err != nil {
		buf.Close()
		return nil, fmt.Errorf("workload: xen_version: %w", err)
	}
	t := &Tmem{c: c, buf: buf}
	if v == 4<<16 {
		b := buf.Bytes()[:hypercall.XenExtraversionLen]
		clear(b)
		if _, err := c.Hypercall(hypercall.OpXenVersion, hypercall.Args{hypercall.XENVER_extraversion, buf.Addr()}); err != nil {
			buf.Close()
			return nil, fmt.Errorf("workload: xen_version extraversion: %w", err)
		}
		t.a0 = len(b) > 1 && b[0] == '.' && (b[1] == '0' || b[1] == '1') && (len(b) < 3 || b[2] < '0' || b[2] > '9')
	}
	return t, nil
}

// Close releases the argument buffer.
func (t *Tmem) Close() error { return t.buf.Close() }

// rc turns a hypercall result into Xen's signed return value; an error
// that is not an Errno is returned as is.
func rc(v uint64, err error) (int64, error) {
	if err == nil {
		return int64(v), nil
	}
	var e hypercall.Errno
	if errors.As(err, &e) {
		return -int64(e), nil
	}
	return 0, err
}

func (t *Tmem) issue() (int64, error) {
	return rc(t.c.Hypercall(hypercall.OpTmem, hypercall.Args{t.buf.Addr()}))
}

// NewPool creates a pool and returns its id, or Xen's negative answer.
func (t *Tmem) NewPool(persistent, shared bool, uuid [2]uint64) (int64, error) {
	b := t.buf.Bytes()[:56]
	clear(b)
	flags := uint32(hypercall.TMEM_SPEC_VERSION) << hypercall.TMEM_POOL_VERSION_SHIFT
	if t.a0 {
		flags = 0
	}
	if persistent {
		flags |= hypercall.TMEM_POOL_PERSIST
	}
	if shared {
		flags |= hypercall.TMEM_POOL_SHARED
	}
	le := binary.LittleEndian
	le.PutUint32(b[0:], hypercall.TMEM_NEW_POOL)
	le.PutUint64(b[8:], uuid[0])
	le.PutUint64(b[16:], uuid[1])
	le.PutUint32(b[24:], flags)
	return t.issue()
}

// DestroyPool destroys a pool: 1, or 0 when there was none.
func (t *Tmem) DestroyPool(pool int32) (int64, error) {
	b := t.buf.Bytes()[:56]
	clear(b)
	binary.LittleEndian.PutUint32(b[0:], hypercall.TMEM_DESTROY_POOL)
	binary.LittleEndian.PutUint32(b[4:], uint32(pool))
	return t.issue()
}

func (t *Tmem) page(cmd uint32, pool int32, oid [3]uint64, index uint32, frame uint64) (int64, error) {
	b := t.buf.Bytes()[:56]
	clear(b)
	le := binary.LittleEndian
	le.PutUint32(b[0:], cmd)
	le.PutUint32(b[4:], uint32(pool))
	if t.a0 {
		le.PutUint64(b[8:], oid[0])
		le.PutUint32(b[16:], index)
		le.PutUint64(b[32:], frame)
	} else {
		le.PutUint64(b[8:], oid[0])
		le.PutUint64(b[16:], oid[1])
		le.PutUint64(b[24:], oid[2])
		le.PutUint32(b[32:], index)
		le.PutUint64(b[48:], frame)
	}
	return t.issue()
}

// Put copies frame into tmem: 1 on success.
func (t *Tmem) Put(pool int32, oid [3]uint64, index uint32, frame uint64) (int64, error) {
	return t.page(hypercall.TMEM_PUT_PAGE, pool, oid, index, frame)
}

// Get copies a page from tmem into frame: 1 hit, 0 miss, negative errno.
func (t *Tmem) Get(pool int32, oid [3]uint64, index uint32, frame uint64) (int64, error) {
	return t.page(hypercall.TMEM_GET_PAGE, pool, oid, index, frame)
}

// FlushPage drops one page.
func (t *Tmem) FlushPage(pool int32, oid [3]uint64, index uint32) (int64, error) {
	return t.page(hypercall.TMEM_FLUSH_PAGE, pool, oid, index, 0)
}

// FlushObject drops an object.
func (t *Tmem) FlushObject(pool int32, oid [3]uint64) (int64, error) {
	return t.page(hypercall.TMEM_FLUSH_OBJECT, pool, oid, 0, 0)
}
