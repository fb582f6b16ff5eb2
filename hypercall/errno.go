package hypercall

import (
	"runtime"
	"syscall"
)

// Errno is an error number returned by Xen: the negated hypercall return
// value. Xen's numbering on x86 equals Linux's (xen/include/public/errno.h),
// plus the tmem-specific EFROZEN and EEMPTY.
type Errno int32

// The errno values callers match with errors.Is.
const (
	EPERM      Errno = 1
	ENOENT     Errno = 2
	E2BIG      Errno = 7
	ENOMEM     Errno = 12
	EACCES     Errno = 13
	EFAULT     Errno = 14
	EEXIST     Errno = 17
	ENODEV     Errno = 19
	EINVAL     Errno = 22
	ENOSPC     Errno = 28
	ERANGE     Errno = 34
	ENOSYS     Errno = 38
	EOPNOTSUPP Errno = 95
	// EFROZEN is tmem's "client frozen" (no libc name).
	EFROZEN Errno = 1000
	// EEMPTY is tmem's "pool holds no pages" (no libc name).
	EEMPTY Errno = 1001
)

var errnoText = map[Errno][2]string{
	EPERM:      {"EPERM", "operation not permitted"},
	ENOENT:     {"ENOENT", "no such entry"},
	E2BIG:      {"E2BIG", "argument list too long"},
	ENOMEM:     {"ENOMEM", "out of memory"},
	EACCES:     {"EACCES", "permission denied"},
	EFAULT:     {"EFAULT", "bad address"},
	EEXIST:     {"EEXIST", "already exists"},
	ENODEV:     {"ENODEV", "no such device"},
	EINVAL:     {"EINVAL", "invalid argument"},
	ENOSPC:     {"ENOSPC", "no space left"},
	ERANGE:     {"ERANGE", "result out of range"},
	ENOSYS:     {"ENOSYS", "function not implemented"},
	EOPNOTSUPP: {"EOPNOTSUPP", "operation not supported"},
	EFROZEN:    {"EFROZEN", "tmem client frozen"},
	EEMPTY:     {"EEMPTY", "tmem pool empty"},
	5:          {"EIO", "I/O error"},
	11:         {"EAGAIN", "try again"},
	16:         {"EBUSY", "device or resource busy"},
	25:         {"ENOTTY", "inappropriate ioctl for device"},
	75:         {"EOVERFLOW", "value too large"},
}

// Name returns the symbolic name, e.g. "EFROZEN", or "errno N".
func (e Errno) Name() string {
	if t, ok := errnoText[e]; ok {
		return t[0]
	}
	return "errno " + itoa(uint64(uint32(e)))
}

// Error returns the name and its meaning, e.g. "EACCES (permission denied)".
func (e Errno) Error() string {
	if t, ok := errnoText[e]; ok {
		return t[0] + " (" + t[1] + ")"
	}
	return e.Name()
}

// Is reports whether target is the same error number as a syscall.Errno,
// so that errors.Is(err, syscall.EPERM) also holds on Linux, whose errno
// numbering Xen shares.
func (e Errno) Is(target error) bool {
	t, ok := target.(syscall.Errno)
	return ok && runtime.GOOS == "linux" && int64(t) == int64(e)
}

// Error is a failed hypercall: the operation that failed and the errno.
type Error struct {
	Op    string
	Errno Errno
}

// NewError returns an *Error for op if err is an Errno, err wrapped with op
// otherwise, and nil for a nil err.
func NewError(op string, err error) error {
	if err == nil {
		return nil
	}
	if e, ok := err.(Errno); ok {
		return &Error{Op: op, Errno: e}
	}
	return &wrapped{op: op, err: err}
}

func (e *Error) Error() string { return e.Op + ": " + e.Errno.Error() }

// Unwrap returns the errno.
func (e *Error) Unwrap() error { return e.Errno }

type wrapped struct {
	op  string
	err error
}

func (w *wrapped) Error() string { return w.op + ": " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }

// ResultErrno converts a raw hypercall return value (a signed long) into the
// non-negative result or the Errno it encodes. Linux reports values in
// -4095..-1 as errors; everything else is a result.
func ResultErrno(rc int64) (uint64, error) {
	if rc < 0 && rc >= -4095 {
		return 0, Errno(-rc)
	}
	return uint64(rc), nil
}
