// Package xensim is a simulated Xen hypervisor behind the
// [hypercall.Caller] interface, so that the whole toolkit runs and is
// tested without Xen. It decodes the real argument layouts of a chosen
// release (4.0.0 … 4.22) and answers like that release: xen_version,
// sysctl (interface-version check, physinfo, getdomaininfolist) and tmem —
// the guest tmem_op of every ABI generation and the control sub-ops of
// generations A (TMEM_CONTROL), B, C and D (XEN_SYSCTL_tmem_op). From 4.13
// tmem answers ENOSYS, as the real hypervisor does.
//
// # Key types
//
//   - [Sim] is the hypervisor. It is built on package hypercalltest (as
//     genltest sits on nltest): the Sim itself is dom0's Caller, and
//     [Sim.Guest] returns a Caller whose hypercalls come from another
//     domain, so xenctl's guest API can be used from any domain.
//   - [Config] chooses the release, tmem on/off/not built, tmem_compress,
//     tmem_shared_auth, host and dom0 memory and an injected clock.
//   - [GuestMemory] is a domain's frame space: the frame number a guest
//     passes to PUT and GET (cmfn) indexes it, so drivers can put real
//     data and verify what comes back.
//   - [DomainConfig] describes a domain for [Sim.CreateDomain]; Xen knows
//     no names, only ids.
//
// Guest workload drivers (cleancache, frontswap) live in the sub-package
// workload.
//
// # Faithfulness
//
// The tmem core is a port of Xen 4.12.4's xen/common/tmem.c,
// tmem_control.c and tmem_xen.h, function by function, and it reproduces
// the real 4.12.4 transcripts in testdata/golden byte for byte (LIST text,
// raw records, return codes, physinfo free_pages after every step). What
// makes that possible, and what the simulator models:
//
//   - clients created on the first non-control tmem_op (or SET_POOLS,
//     SET_AUTH, RESTORE_BEGIN); 16 pools per client, 16 global shared
//     pools; the pool flag checks of each release; exclusive GET on private
//     ephemeral pools; EEMPTY, EFROZEN, ENODEV, ENOSPC, EFAULT where Xen
//     returns them; the -1 (EPERM) of many control paths;
//   - every statistic of LIST, with the release's keys (ca up to 4.7, the
//     T= cycle counters up to 4.3, the short G= long form of 4.0.0), the
//     owner's pool id in P= lines of shared pools, unpadded hex uuids, the
//     scratch-buffer mechanics that let LIST write past its length, and the
//     garbled second and later S= lines (the scratch offset is not reset
//     between shared pools), emulated with Xen's 1024-byte buffer;
//   - memory: Xen's TLSF allocator (xmalloc_tlsf.c) is emulated block for
//     block, with Xen 4.12's structure sizes, for tmem's ephemeral pool,
//     each client's persistent pool and the Xen heap's xmalloc pool; the
//     radix tree of each object (radix-tree.c) is emulated node for node.
//     So metadata pages come and go as in Xen, and free_pages, Ta (tmem's
//     free list), QUERY_FREEABLE_MB, Nc, Oc and FLUSH results match.
//     Persistent pages (data and metadata) are charged to the domain
//     (ENOMEM at max_pages, counted in Af/Pf); ephemeral pages come from
//     the free heap;
//   - eviction: tmem_ensure_avail_pages before each PUT (1 MiB above the
//     mid-size zone, 10 failed attempts, ENOMEM from 4.4), the heap sending
//     order-0 allocations to tmem when free memory is down to the mid-size
//     zone (tmem_relinquish_pages, Rt/Ra/Rx), FLUSH, and client_over_quota
//     literally, including its inverted-looking test and the client weight
//     total that is never decreased when a client goes away;
//   - shared pools: authorisation (4.9+ always, 4.0–4.8 with
//     tmem_shared_auth), the silent fallback to a private pool, uuid
//     (-1,-1), ownership passing to the next sharer (which inherits the old
//     owner's whole ephemeral list), and a quitting sharer leaving the pool
//     marked dying (its pages are never evicted again);
//   - domain death flushes the domain's pools (tmem_destroy);
//   - save/restore sub-ops, including SAVE_GET_NEXT_PAGE never returning
//     the first page of a pool (Xen's cursor bug).
//
// # Approximations
//
//   - Structure sizes and allocator behaviour are Xen 4.12's for every
//     release, so older releases' metadata page counts are approximate.
//   - Xen's own xmalloc heap (client and pool structures) starts with one
//     partly used page with 2896 free bytes, a calibration that matches the
//     4.12.4 boot of the transcripts; the real value depends on the boot.
//   - Compression uses DEFLATE (compress/flate, fastest level) where Xen
//     used LZO1X-1: sizes differ, the decisions (cp, cb, cn, cm) follow the
//     same thresholds. Pages are kept uncompressed in memory.
//   - Guest memory: frame numbers 0 … max_pages-1 are the domain's (a real
//     PV guest passes machine frames); any other frame is EFAULT.
//   - Default physinfo values (CPU speed, hw_cap, max_mfn) are the 4.12.4
//     transcript machine's; Xen's own memory use defaults to 1/64 of the
//     host. Cycle counters (4.0–4.3) come from the injected clock.
//   - Domains are created with all their memory at once; libxl's order-9
//     allocations are not modelled, and domain creation never takes memory
//     back from tmem (as on real Xen, flush first).
//   - Releases after 4.19 use 4.17's physinfo and domain-info layouts
//     (not verified against their headers); hw_cap and the capability words
//     are the transcripts' machines'.
//   - A hypervisor built without tmem (TmemNotBuilt, 4.7+) answers ENOSYS to
//     tmem_op and to sysctl 24.
//   - XSM/FLASK is the dummy policy: only dom0 may use sysctl and (from
//     4.1.4/4.2.1/4.3) TMEM_CONTROL; TMEM_AUTH and TMEM_RESTORE_NEW are
//     open to every domain up to 4.8, as in Xen.
//
// # Errors
//
// Hypercalls return Xen's result or a [hypercall.Errno], exactly as the
// privcmd device does; an address outside the calling domain's buffers is
// EFAULT. Go methods (CreateDomain, ...) return errors that wrap
// [ErrNoDomain], [ErrDomainExists] or [ErrNoMemory].
//
// # Concurrency
//
// A Sim is safe for concurrent use; one mutex serialises every hypercall
// and Go method, like tmem's global rwlock held for writing. Buffers follow
// the [hypercall.Buffer] rules.
//
// BUG(xensim): A GET from a private ephemeral pool whose copy to the guest
// fails leaks the page descriptor in Xen; the simulator drops the page.
//
// BUG(xensim): Where Xen would read freed memory or a list head as a page
// (a failed shared-pool join, SAVE_GET_NEXT_PAGE on a one-page pool,
// SAVE_END's list), the simulator answers cleanly instead.
package xensim
