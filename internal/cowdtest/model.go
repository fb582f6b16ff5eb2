package cowdtest

import (
	"bytes"
	"fmt"
)

// Model is the trivially correct reference device: a byte slice plus a
// mask of bytes whose content the protocol defines. TRIM makes bytes
// undefined (NBD lets a trimmed range read back anything) until they are
// written or zeroed again.
type Model struct {
	data    []byte
	defined []bool
}

// NewModel starts from the given content, all defined.
func NewModel(base []byte) *Model {
	m := &Model{data: bytes.Clone(base), defined: make([]bool, len(base))}
	for i := range m.defined {
		m.defined[i] = true
	}
	return m
}

// Write records a write.
func (m *Model) Write(p []byte, off int64) {
	copy(m.data[off:], p)
	for i := range p {
		m.defined[off+int64(i)] = true
	}
}

// Zero records WRITE_ZEROES.
func (m *Model) Zero(off, n int64) {
	clear(m.data[off : off+n])
	for i := off; i < off+n; i++ {
		m.defined[i] = true
	}
}

// Trim records TRIM.
func (m *Model) Trim(off, n int64) {
	for i := off; i < off+n; i++ {
		m.defined[i] = false
	}
}

// Check compares data read at off with the model's defined bytes.
func (m *Model) Check(got []byte, off int64) error {
	for i, b := range got {
		j := off + int64(i)
		if m.defined[j] && m.data[j] != b {
			return fmt.Errorf("byte %d is %#02x, model has %#02x", j, b, m.data[j])
		}
	}
	return nil
}

// Settle adopts read-back content for undefined bytes, so later checks
// are exact again.
func (m *Model) Settle(got []byte, off int64) {
	for i, b := range got {
		if j := off + int64(i); !m.defined[j] {
			m.data[j], m.defined[j] = b, true
		}
	}
}

// Bytes returns the model content (undefined bytes hold stale values).
func (m *Model) Bytes() []byte { return m.data }
