package xenctl

import (
	"errors"
	"fmt"

	"github.com/xentmem/xentmem/hypercall"
)

// Sentinels. Every [*Error] matches exactly one of them.
var (
	// ErrNotSupported means the running Xen lacks the operation. It is the
	// one value hypercall.ErrNotSupported, aliased.
	ErrNotSupported = hypercall.ErrNotSupported
	// ErrPermission: not dom0, or access to privcmd denied, or XSM denial.
	ErrPermission = errors.New("permission denied")
	// ErrInterfaceVersion: Xen rejected the sysctl interface version (EACCES).
	ErrInterfaceVersion = errors.New("wrong sysctl interface version")
	// ErrFault: Xen could not access the argument memory (EFAULT).
	ErrFault = errors.New("argument memory not accessible")
	// ErrTmemDisabled: tmem is compiled in but not enabled (ENODEV).
	ErrTmemDisabled = errors.New("tmem disabled")
	// ErrNoTmem: the hypervisor has no tmem (ENOSYS): built without it, or
	// Xen 4.13 and later.
	ErrNoTmem = errors.New("tmem not present")
	// ErrFrozen: the tmem client is frozen (EFROZEN).
	ErrFrozen = errors.New("tmem client frozen")
	// ErrEmpty: the tmem pool holds no pages (EEMPTY).
	ErrEmpty = errors.New("tmem pool empty")
	// ErrNoPool: no such tmem pool (ENODEV on a page operation).
	ErrNoPool = errors.New("no such tmem pool")
	// ErrNoClient: no such tmem client or domain.
	ErrNoClient = errors.New("no such tmem client")
	// ErrNoMemory: Xen ran out of memory, or a persistent pool is at its
	// domain's maximum (ENOMEM).
	ErrNoMemory = errors.New("out of memory")
	// ErrInvalid: Xen rejected an argument (EINVAL, ERANGE, E2BIG, EEXIST, EOPNOTSUPP).
	ErrInvalid = errors.New("invalid argument")
	// ErrFailed: a tmem path answered a bare -1 (reads as EPERM but is no
	// permission problem) or another errno without a better meaning.
	ErrFailed = errors.New("operation failed")
	// ErrBadInput: a value given to this package is malformed.
	ErrBadInput = errors.New("bad input")
)

// Error is a failed Xen operation.
type Error struct {
	Op       string          // e.g. "sysctl physinfo"
	Errno    hypercall.Errno // Xen's errno
	Sentinel error           // the package sentinel it matches
	Hint     string          // what to do about it, may be empty
}

func (e *Error) Error() string {
	s := "xenctl: " + e.Op + ": " + e.Errno.Error()
	if e.Hint != "" {
		s += ": " + e.Hint
	}
	return s
}

// Is matches the sentinel.
func (e *Error) Is(target error) bool { return target == e.Sentinel }

// Unwrap returns the errno.
func (e *Error) Unwrap() error { return e.Errno }

// opKind is the family of operation, which decides what an errno means.
type opKind int

const (
	kindVersion opKind = iota
	kindSysctl
	kindTmemGuest
	kindTmemControl
)

// opError maps a hypercall error to an *Error with a sentinel and a hint.
// Non-errno errors (closed device, allocation failures) are wrapped as they
// are. It returns nil for nil.
func opError(op string, kind opKind, err error) error {
	if err == nil {
		return nil
	}
	var errno hypercall.Errno
	if !errors.As(err, &errno) {
		return fmt.Errorf("xenctl: %s: %w", op, err)
	}
	e := &Error{Op: op, Errno: errno, Sentinel: ErrFailed}
	switch errno {
	case hypercall.EPERM:
		if kind == kindTmemGuest || kind == kindTmemControl {
			e.Sentinel = ErrFailed
			e.Hint = "tmem refused the request (Xen answers many tmem failures with a bare -1); if every call fails, this is not dom0 or an XSM policy denies tmem"
		} else {
			e.Sentinel = ErrPermission
			e.Hint = "not dom0, or an XSM/FLASK policy denies it"
		}
	case hypercall.EACCES:
		e.Sentinel = ErrInterfaceVersion
		e.Hint = "wrong sysctl interface version for this Xen (set it explicitly if this Xen is newer than this tool knows)"
	case hypercall.EFAULT:
		e.Sentinel = ErrFault
		e.Hint = "argument memory was not resident; this is a bug in the buffer allocator"
	case hypercall.ENOSYS:
		e.Sentinel = ErrNoTmem
		if kind == kindTmemGuest || kind == kindTmemControl {
			e.Hint = "tmem not built into this hypervisor, or Xen 4.13 and later, which removed it"
		} else {
			e.Sentinel = ErrNotSupported
			e.Hint = "this hypervisor does not implement the operation"
		}
	case hypercall.ENODEV:
		if kind == kindTmemGuest {
			e.Sentinel = ErrNoPool
			e.Hint = "the pool does not exist (or tmem is not enabled: boot Xen with tmem=1)"
		} else {
			e.Sentinel = ErrTmemDisabled
			e.Hint = "tmem is compiled in but disabled: boot Xen with tmem=1"
		}
	case hypercall.EFROZEN:
		e.Sentinel = ErrFrozen
		e.Hint = "thaw the client first (tmem-thaw)"
	case hypercall.EEMPTY:
		e.Sentinel = ErrEmpty
	case hypercall.ENOENT:
		e.Sentinel = ErrNoClient
		e.Hint = "the domain has no tmem client (it never used tmem)"
	case hypercall.ENOMEM:
		e.Sentinel = ErrNoMemory
	case hypercall.EINVAL, hypercall.ERANGE, hypercall.E2BIG, hypercall.EEXIST:
		e.Sentinel = ErrInvalid
	case hypercall.EOPNOTSUPP:
		e.Sentinel = ErrNotSupported
		e.Hint = "this Xen's tmem ABI generation does not accept the request this way"
	}
	return e
}

// UnsupportedError is an operation the running Xen lacks. It matches
// [ErrNotSupported].
type UnsupportedError struct {
	Op      string  // the operation, e.g. "tmem set cap"
	Running Version // the running Xen
	// Have names the Xen releases that have it, e.g. "4.0–4.7"; empty if none.
	Have string
}

func (e *UnsupportedError) Error() string {
	if e.Have == "" {
		return fmt.Sprintf("xenctl: %s: not supported by Xen %s", e.Op, e.Running)
	}
	return fmt.Sprintf("xenctl: %s: not supported by Xen %s (available in Xen %s)", e.Op, e.Running, e.Have)
}

// Is matches ErrNotSupported.
func (e *UnsupportedError) Is(target error) bool { return target == ErrNotSupported }
