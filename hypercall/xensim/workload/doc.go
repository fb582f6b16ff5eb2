// Package workload drives tmem from simulated guests the way a Linux
// guest's tmem driver (drivers/xen/tmem.c) does, so that the simulator
// sees realistic traffic and the effect of tmem can be measured.
//
//   - [Cleancache] is a filesystem page cache with cleancache: one private
//     ephemeral pool per mounted filesystem; a clean page evicted from the
//     bounded page cache (LRU) is PUT; before every disk read the page is
//     tried with an (exclusive) GET; truncating or invalidating a file is a
//     FLUSH_OBJECT; unmounting destroys the pool.
//   - [Frontswap] is anonymous memory with a swap device and frontswap: one
//     private persistent pool; a page swapped out is PUT under the
//     (type, offset) handle of xen-tmem-abi.md §11, a page swapped in is
//     tried with GET, and a freed swap slot is flushed.
//
// Both work on the page contents for real: data goes through the guest's
// frames ([xensim.GuestMemory]), every page that comes back from tmem is
// checked, and [Stats] report hits, disk reads avoided and corruptions.
// Access patterns ([Uniform], [Zipf], [Sequential]) are seeded and
// deterministic (math/rand/v2 PCG): the same seed gives the same run.
//
// The drivers encode struct tmem_op themselves ([Tmem]), in the 40- or
// 56-byte layout of the release they run on, and never allocate per
// operation. They are not safe for concurrent use; run one driver per
// goroutine (and per domain).
package workload
