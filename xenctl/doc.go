// Package xenctl is the typed layer over package hypercall: the Xen version
// and the tmem ABI generation it implies, physinfo, the domain list, tmem
// guest operations and tmem control operations for every generation Xen
// shipped (4.0–4.12), and the LIST text parser.
//
// # Construction
//
// [New] takes any [hypercall.Caller] — the real privcmd device or the
// simulated hypervisor — reads the Xen version once, and chooses every
// encoding (sysctl interface version, physinfo and domain-info layouts, tmem
// generation) from it. A [Client] is safe for concurrent use: calls are
// serialised because they share hypercall buffers.
//
// # Errors
//
// Every failed hypercall is returned as an [*Error] that names the operation,
// carries the Xen errno (errors.Is(err, hypercall.EACCES) holds) and matches
// one sentinel of this package (errors.Is(err, ErrInterfaceVersion) holds),
// with a hint that says what to do. An operation the running Xen lacks
// returns an [*UnsupportedError], which matches [ErrNotSupported] and names
// the Xen versions that have it.
//
// # Probes
//
// [Client.ProbeTmem] follows xen-tmem-abi.md §1.4. Its contract: a nil error
// and Available=true means tmem answers; a nil error and Available=false
// means tmem is definitely not usable here, with the reason; any error means
// the probe could not tell. Conclusive results are cached on the Client.
package xenctl
