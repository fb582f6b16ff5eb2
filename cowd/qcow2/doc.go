// Package qcow2 reads and writes QEMU's qcow2 images (versions 2 and 3)
// for cowd's "-p qcow2" plugin: a guest disk served over NBD whose writes
// land in a qcow2 overlay over a raw or qcow2 backing chain, in images
// that qemu-img check reports clean. The supported features are listed in
// docs/qcow2.md.
//
// # Key types
//
//   - [Device] is an open image. It implements io.ReaderAt, io.WriterAt
//     and Sync, plus Trim, WriteZeroes, BlockStatus and Cache, which is
//     everything package cowd/nbd serves. Reads resolve normal, zero,
//     compressed (raw deflate) and unallocated clusters, the last through
//     the backing chain; the first write to a cluster allocates one and
//     copies the untouched part from the chain (with extended L2 entries,
//     only the touched subclusters).
//   - [Header] is the image header with its extensions; [ParseHeader] and
//     [Header.MarshalBinary] are its codec (fuzzed).
//   - [Image] opens an image read-only for inspection: [Image.Check]
//     (qemu-img check's refcount recomputation, exit codes 0/2/3),
//     [Image.Extents] and [Image.Stats].
//   - [Create], [Commit], [MakeEmpty] and [Repair] are the offline
//     operations of cowd-img and cowd -I.
//
// # Crash consistency
//
// Metadata changes are made in memory (L1 table, cached L2 tables,
// refcount blocks) after the data they point to was written, and written
// by a flush ([Device.Sync], NBD FLUSH and FUA, and when dirty tables
// fill half the L2 cache) in an order that leaves at most leaked
// clusters after a crash: guest data and refcount increments are made
// durable before the L2 entries that use them; new L2 tables and refcount
// blocks before the L1 or refcount table entries that point to them; a
// moved refcount table before the header that points to it; and a
// cluster's refcount is decremented only after the map that stopped using
// it is durable, so it is never reused while a durable entry points to it.
// With lazy refcounts (a compatible feature) the dirty bit is set while
// the image is open and refcount blocks are written only at Close; a
// dirty image gets its refcounts rebuilt at the next Open.
//
// # Lifecycle and locking
//
// [Open] takes QEMU's image locks (open file description locks on bytes
// 100-103 and 200-203), so a running QEMU, qemu-nbd or second cowd makes
// it fail with [ErrInUse], and qemu-img needs -U (force share) to look at
// an image cowd serves. It validates the header, the L1 and refcount tables
// and the refcounts of metadata clusters, and refuses what it cannot write
// safely before writing anything. L2 tables and refcount blocks are
// validated when first read; a bad one fails the request with
// [ErrCorrupt]. [Device.Close] must be called after all I/O has stopped.
//
// # Errors
//
// Errors wrap the sentinels in errors.go and keep the syscall errno of
// I/O errors (ENOSPC reaches NBD clients as ENOSPC). A failed flush makes
// the Device refuse further writes ([ErrFailed]). The package does not log.
//
// BUG(qcow2): internal snapshots and persistent bitmaps are readable in
// backing files but refused in an image opened for writing; encryption,
// external data files and zstd compression are refused everywhere. The
// image is never resized and writes are never compressed.
//
// BUG(qcow2): outside Linux, images are not locked and freed clusters are
// not punched out of the file.
package qcow2
