package qcow2

import (
	"errors"
	"fmt"

	"github.com/xentmem/xentmem/cowd"
)

// Sentinel errors. Every error of this package wraps at most one of them.
var (
	// ErrFormat reports bytes that are not a valid qcow2 structure: bad
	// magic, a field out of range, a misaligned table.
	ErrFormat = errors.New("qcow2: invalid format")
	// ErrUnsupported reports a valid image that uses a feature this
	// package does not implement (encryption, external data files,
	// unknown incompatible features, internal snapshots or persistent
	// bitmaps in an image opened for writing, zstd compression, a
	// backing format other than raw or qcow2). Nothing is written.
	ErrUnsupported = errors.New("qcow2: unsupported image feature")
	// ErrCorrupt reports metadata that decodes but is inconsistent: a
	// table entry with reserved bits set or pointing outside the file,
	// the corrupt bit, a refcount that cannot be right. Run "qemu-img
	// check" or "cowd-img check" for the details.
	ErrCorrupt = errors.New("qcow2: image metadata is corrupt")
	// ErrInUse reports an image that another process (cowd or QEMU) has
	// locked with conflicting permissions.
	ErrInUse = errors.New("qcow2: image is in use by another process")
	// ErrRange reports an I/O request outside the device.
	ErrRange = cowd.ErrRange
	// ErrClosed reports use of a closed Device.
	ErrClosed = cowd.ErrClosed
	// ErrFailed reports a Device that stopped accepting writes after an
	// earlier error made its durability or metadata uncertain.
	ErrFailed = cowd.ErrFailed
)

// Operation names used in errors.
const (
	opRead   = "read"
	opWrite  = "write"
	opZero   = "write zeroes"
	opTrim   = "trim"
	opFlush  = "flush"
	opCommit = "commit"
	opRepair = "repair"
)

func opError(op string, off int64, err error) error {
	return fmt.Errorf("qcow2: %s at offset %d: %w", op, off, err)
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}
