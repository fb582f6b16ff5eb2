package qcow2

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
)

// inflater is a reusable raw-deflate decompressor with its input buffer.
type inflater struct {
	in []byte
	br bytes.Reader
	z  zreader
}

// zreader is a raw-deflate reader that can be reset onto new input.
type zreader interface {
	io.ReadCloser
	flate.Resetter
}

// decompress inflates the compressed cluster that descriptor e points to
// into dst (one cluster). QEMU writes raw deflate (zlib without header),
// and the stored length is rounded up to 512-byte sectors, so the input
// may run past the end of the stream, or of the file.
func (d *Device) decompress(e uint64, dst []byte) error {
	off, n := d.g.compressedRange(e)
	z, _ := d.zbufs.Get().(*inflater)
	if z == nil {
		z = &inflater{}
	}
	defer d.zbufs.Put(z)
	if int64(cap(z.in)) < n {
		z.in = make([]byte, n)
	}
	in := z.in[:n]
	m, err := d.f.ReadAt(in, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read compressed cluster at %#x: %w", off, err)
	}
	z.br.Reset(in[:m])
	if z.z == nil {
		z.z = flate.NewReader(&z.br).(zreader)
	} else if err := z.z.Reset(&z.br, nil); err != nil {
		return err
	}
	if _, err := io.ReadFull(z.z, dst); err != nil {
		return corruptf("compressed cluster at %#x does not inflate to %d bytes: %v", off, len(dst), err)
	}
	return nil
}
