package cowd

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package wraps at most one of
// them, so callers match with errors.Is.
var (
	// ErrFormat reports bytes that are not a valid dscow structure: bad
	// magic, checksum, geometry or field value.
	ErrFormat = errors.New("dscow: invalid format")
	// ErrVersion reports a dscow image written by a newer, incompatible
	// format version or with unknown incompatible feature bits.
	ErrVersion = errors.New("dscow: unsupported format version or feature")
	// ErrCorrupt reports metadata that decodes but is inconsistent (a map
	// entry pointing outside the data area, two blocks sharing one data
	// block). Run "cowd-img check" for the details.
	ErrCorrupt = errors.New("dscow: image metadata is corrupt")
	// ErrBaseChanged reports a base image whose size or sampled content no
	// longer matches the identity recorded at create time.
	ErrBaseChanged = errors.New("dscow: base image changed since the overlay was created")
	// ErrBaseShort reports a base image shorter than recorded; it also
	// matches ErrBaseChanged.
	ErrBaseShort = fmt.Errorf("%w: base is shorter than recorded", ErrBaseChanged)
	// ErrInUse reports an image locked by another process (a running cowd).
	ErrInUse = errors.New("dscow: image is in use by another process")
	// ErrCommitting reports an image whose last "cowd-img commit" was
	// interrupted; rerun the commit before serving it.
	ErrCommitting = errors.New("dscow: an interrupted commit must be finished first (run cowd-img commit again)")
	// ErrRange reports an I/O request outside the device.
	ErrRange = errors.New("cowd: request outside the device")
	// ErrClosed reports use of a closed Device.
	ErrClosed = errors.New("cowd: device is closed")
	// ErrFailed reports a Device that stopped accepting writes after an
	// earlier error made durability uncertain (for example a failed fsync:
	// the kernel may have dropped the dirty pages, so a later fsync that
	// succeeds would prove nothing). Restart cowd; the journal restores the
	// last durable state.
	ErrFailed = errors.New("cowd: device failed earlier and accepts no more writes")
)

// Operation names used in errors.
const (
	opRead   = "read"
	opWrite  = "write"
	opZero   = "write zeroes"
	opFlush  = "flush"
	opOpen   = "open"
	opCommit = "commit"
	opReload = "reload"
)

// opError wraps err with the operation and the byte offset it failed at.
func opError(op string, off int64, err error) error {
	return fmt.Errorf("cowd: %s at offset %d: %w", op, off, err)
}
