package cowd

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// Base identity sampling: 16 ranges of 64 KiB spread evenly over the base,
// always including its first and last bytes, so opening costs at most 1 MiB
// of reads whatever the base size.
const (
	identitySamples   = 16
	identitySampleLen = 64 << 10
)

// fileSize returns the size of a regular file or a block device (whose
// stat size is 0 on Linux, hence the seek).
func fileSize(f *os.File) (int64, error) {
	n, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("cowd: size of %s: %w", f.Name(), err)
	}
	return n, nil
}

// sampleRanges returns the sampled ranges of a base of the given size.
func sampleRanges(size int64, samples, sampleLen uint32) [][2]int64 {
	l := int64(sampleLen)
	if size <= l || samples <= 1 {
		return [][2]int64{{0, min(size, l)}}
	}
	out := make([][2]int64, 0, samples)
	span := size - l
	for i := range int64(samples) {
		out = append(out, [2]int64{i * span / int64(samples-1), l})
	}
	return out
}

// identityDigest hashes the sampled ranges, each prefixed by its offset.
func identityDigest(r io.ReaderAt, size int64, samples, sampleLen uint32) ([32]byte, error) {
	h := sha256.New()
	buf := make([]byte, sampleLen)
	var off [8]byte
	for _, s := range sampleRanges(size, samples, sampleLen) {
		b := buf[:s[1]]
		if _, err := r.ReadAt(b, s[0]); err != nil {
			return [32]byte{}, fmt.Errorf("cowd: sample base at %d: %w", s[0], err)
		}
		binary.BigEndian.PutUint64(off[:], uint64(s[0]))
		h.Write(off[:])
		h.Write(b)
	}
	var d [32]byte
	h.Sum(d[:0])
	return d, nil
}

// computeIdentity records the identity of an open base.
func computeIdentity(f *os.File, path string) (BaseIdentity, error) {
	size, err := fileSize(f)
	if err != nil {
		return BaseIdentity{}, err
	}
	if size <= 0 {
		return BaseIdentity{}, fmt.Errorf("cowd: base %s is empty", path)
	}
	fi, err := f.Stat()
	if err != nil {
		return BaseIdentity{}, fmt.Errorf("cowd: stat base: %w", err)
	}
	id := BaseIdentity{
		Path:      path,
		Size:      size,
		ModTime:   fi.ModTime().UTC(),
		Samples:   identitySamples,
		SampleLen: identitySampleLen,
	}
	id.Digest, err = identityDigest(f, size, id.Samples, id.SampleLen)
	return id, err
}

// verifyBase checks an open base against the recorded identity. A changed
// modification time alone is returned as a warning, not an error.
func verifyBase(f *os.File, id BaseIdentity) (warnings []string, err error) {
	size, err := fileSize(f)
	if err != nil {
		return nil, err
	}
	switch {
	case size < id.Size:
		return nil, fmt.Errorf("%w: %s is %d bytes, the image recorded %d", ErrBaseShort, id.Path, size, id.Size)
	case size != id.Size:
		return nil, fmt.Errorf("%w: %s is %d bytes, the image recorded %d", ErrBaseChanged, id.Path, size, id.Size)
	}
	d, err := identityDigest(f, size, id.Samples, id.SampleLen)
	if err != nil {
		return nil, err
	}
	if d != id.Digest {
		return nil, fmt.Errorf("%w: the content of %s differs in the sampled ranges", ErrBaseChanged, id.Path)
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && !id.ModTime.IsZero() && !fi.ModTime().Equal(id.ModTime) {
		warnings = append(warnings, fmt.Sprintf("base %s modification time changed (%s, recorded %s) but its size and sampled content match",
			id.Path, fi.ModTime().UTC().Format("2006-01-02T15:04:05Z"), id.ModTime.Format("2006-01-02T15:04:05Z")))
	}
	return warnings, nil
}
