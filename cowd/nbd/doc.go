// Package nbd serves block devices over the Network Block Device protocol
// (fixed newstyle negotiation), for QEMU, libnbd tools (nbdinfo, nbdcopy,
// fio's nbd engine) and the Linux kernel client.
//
// # Key types
//
//   - [Device] is anything with ReadAt, WriteAt and Sync. Optional
//     interfaces add commands: [Trimmer] (TRIM), [Zeroer] (WRITE_ZEROES
//     with NO_HOLE and FAST_ZERO), [BlockStatuser] (BLOCK_STATUS for the
//     base:allocation context) and [Cacher] (CACHE).
//   - [Export] names a Device with its size, flags and [BlockSizes].
//   - [Server] runs the handshake (handshake.go: EXPORT_NAME, ABORT, LIST,
//     INFO, GO, STRUCTURED_REPLY, LIST_META_CONTEXT, SET_META_CONTEXT) and
//     the transmission phase (transmission.go: READ, WRITE, DISC, FLUSH,
//     TRIM, CACHE, WRITE_ZEROES, BLOCK_STATUS, with FUA).
//   - [Errno] is an NBD error code; a Device chooses the code its client
//     sees by returning one, and [ErrnoOf] maps ordinary errors.
//   - [Listen] opens a unix socket (mode 0600) or, when asked, TCP.
//   - [Server.Attach] (Linux only; elsewhere it returns an error wrapping
//     errors.ErrUnsupported) connects an export to the kernel's nbd driver
//     as /dev/nbdN: socketpairs whose one end [Server.ServeTransmission]
//     serves without a handshake, handed to the kernel by generic netlink
//     or, on old kernels, ioctls. [Attachment.Detach] flushes and
//     disconnects the device; call it before stopping the Device.
//
// # Concurrency and ordering
//
// Each connection has a reader goroutine, a bounded pool of workers
// ([Config].Workers) and a write lock that serialises replies, which go out
// in completion order (clients match them by cookie). FLUSH calls
// Device.Sync, which must cover every write completed before it on any
// connection: that is what [Export].MultiConn promises. FUA is a write
// followed by Sync.
//
// # Validation
//
// Requests are checked before they reach the Device: unknown commands or
// flags, reads and trims past the end and misaligned requests (once the
// client agreed to NBD_INFO_BLOCK_SIZE) get EINVAL, writes past the end
// ENOSPC, READ or WRITE payloads above the maximum EOVERFLOW, writes to a
// read-only export EPERM. A bad magic or oversized option data is a
// protocol violation and drops the connection. No input makes the server
// panic; the option and request decoders are fuzzed.
//
// # Lifecycle
//
// [Server.Serve] and [Server.ServeConn] return when ctx ends, after the
// requests already read have been answered; a client that vanishes
// mid-request only ends its own connection.
//
// BUG(nbd): TLS (STARTTLS) and extended headers are not implemented; cowd
// serves on a dom0-local unix socket by default.
package nbd
