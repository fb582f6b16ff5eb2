// Package cowd is the copy-on-write remapper behind the cowd daemon: a
// block map over a read-only base image (file or block device) and a CoW
// store, kept in a dscow image file (format version [Version], specified in
// docs/dscow.md).
//
// # Key types
//
//   - [Device] is an open image serving the CoW view. Reads of blocks still
//     in the base go to the base; the first write to such a block copies the
//     whole block into the CoW store (a write of the whole block skips the
//     copy) and later I/O uses the copy. Trimmed and zeroed blocks become
//     zero blocks that own no data. Device implements io.ReaderAt,
//     io.WriterAt and Sync, plus Trim, WriteZeroes, BlockStatus and Cache,
//     which is everything package cowd/nbd serves.
//   - [Header] is the image header; [Header.MarshalBinary] and
//     [Header.UnmarshalBinary] are the codec (fuzzed for the round trip).
//   - [Image] opens an image read-only for inspection: [Image.Extents]
//     (cowd-img map), [Image.Stats] (info) and [Image.Check].
//   - [Create], [Init] (cowd -I), [Commit] and [Repair] are the offline
//     operations of cowd-img.
//
// # Durability
//
// Map changes are written through a page journal with checksums: data is
// made durable (fdatasync) before any map entry that points to it, and a
// torn journal transaction is never replayed, so a crash at any moment
// leaves a consistent image. By default metadata becomes durable at
// [Device.Sync] (NBD FLUSH and FUA) and [Device.Close]; with
// [Options.Sync] every write waits for it. Concurrent Syncs share one
// commit (group commit).
//
// # Lifecycle
//
// [Open] takes an exclusive flock on the image (a second cowd fails with
// [ErrInUse]), verifies the base (size and a digest of sampled ranges;
// [ErrBaseShort], [ErrBaseChanged]), replays the journal and validates the
// whole map ([ErrCorrupt]). [Device.Close] must be called after all I/O
// has stopped: it flushes, truncates free space at the end of the data
// area and marks the image clean. [Device.Reload] (SIGHUP) flushes, then
// rebuilds the in-memory map from disk.
//
// # Errors
//
// Errors wrap the sentinels in errors.go, and I/O errors keep their
// syscall errno (so an ENOSPC from the CoW store stays visible to
// errors.Is and reaches NBD clients as ENOSPC, with the map unchanged).
// A failed fdatasync makes the Device refuse further writes ([ErrFailed]):
// after such a failure the kernel may have dropped dirty pages, so no later
// flush could be trusted. The package does not log.
//
// BUG(cowd): outside Linux, images are not locked against a second user,
// and freed data blocks are not punched out of the file.
package cowd
