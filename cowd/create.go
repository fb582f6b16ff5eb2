package cowd

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// CreateOptions configures [Create]. A nil *CreateOptions means defaults.
type CreateOptions struct {
	// BlockSize is the CoW block size in bytes (a power of two from 4 KiB
	// to 2 MiB); 0 means [DefaultBlockSize].
	BlockSize int
	// Force overwrites an existing file instead of failing.
	Force bool
}

// Create writes a new, empty dscow image at path over the base image
// basePath (a file or block device, opened read-only here). The base path
// is stored as an absolute path together with the base's identity.
func Create(path, basePath string, opts *CreateOptions) (Header, error) {
	if opts == nil {
		opts = &CreateOptions{}
	}
	bs := opts.BlockSize
	if bs == 0 {
		bs = DefaultBlockSize
	}
	if err := checkBlockSize(int64(bs)); err != nil {
		return Header{}, err
	}
	absBase, err := filepath.Abs(basePath)
	if err != nil {
		return Header{}, fmt.Errorf("cowd: base path: %w", err)
	}
	flags := os.O_RDWR | os.O_CREATE
	if !opts.Force {
		flags |= os.O_EXCL
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return Header{}, fmt.Errorf("cowd: create image: %w", err)
	}
	defer f.Close()
	if err := lockFile(f, true); err != nil {
		return Header{}, err
	}
	if err := f.Truncate(0); err != nil {
		return Header{}, fmt.Errorf("cowd: create image: %w", err)
	}
	h, err := initialise(f, absBase, uint32(bs))
	if err != nil {
		return Header{}, err
	}
	return h, syncDir(path)
}

// InitOptions configures [Init]. A nil *InitOptions means defaults.
type InitOptions struct {
	// BlockSize, if not 0, changes the block size; 0 keeps the image's.
	BlockSize int
}

// Init re-initialises an existing image (cowd -I): every mapping is
// dropped, the data area is emptied, and the identity of the base as it is
// now is recorded, so the overlay starts over from the base. Only the base
// path is kept from the old header, which stays valid until the new one is
// written: an interrupted Init can simply be run again.
func Init(path string, opts *InitOptions) (Header, error) {
	if opts == nil {
		opts = &InitOptions{}
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return Header{}, fmt.Errorf("cowd: init image: %w", err)
	}
	defer f.Close()
	if err := lockFile(f, true); err != nil {
		return Header{}, err
	}
	old, err := readHeader(f)
	if err != nil {
		return Header{}, err
	}
	bs := old.BlockSize
	if opts.BlockSize != 0 {
		if err := checkBlockSize(int64(opts.BlockSize)); err != nil {
			return Header{}, err
		}
		bs = uint32(opts.BlockSize)
	}
	if err := f.Truncate(headerArea); err != nil {
		return Header{}, fmt.Errorf("cowd: init image: %w", err)
	}
	return initialise(f, old.Base.Path, bs)
}

// initialise writes journal, map and then the header of a fresh image into
// f, which holds at most the header area.
func initialise(f *os.File, basePath string, bs uint32) (Header, error) {
	base, err := os.Open(basePath)
	if err != nil {
		return Header{}, fmt.Errorf("cowd: open base: %w", err)
	}
	defer base.Close()
	id, err := computeIdentity(base, basePath)
	if err != nil {
		return Header{}, err
	}
	var uuid [16]byte
	if _, err := rand.Read(uuid[:]); err != nil {
		return Header{}, fmt.Errorf("cowd: image uuid: %w", err)
	}
	h, err := newHeader(bs, uuid, time.Now().UTC(), id)
	if err != nil {
		return Header{}, err
	}
	if err := writeFreshMap(f, &h); err != nil {
		return Header{}, err
	}
	if err := datasync(f); err != nil {
		return Header{}, err
	}
	if err := writeHeader(f, &h); err != nil {
		return Header{}, err
	}
	return h, nil
}

// syncDir makes a newly created directory entry durable.
func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("cowd: sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cowd: sync directory: %w", err)
	}
	return nil
}
