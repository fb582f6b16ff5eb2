package nbd

import (
	"errors"
	"fmt"
	"syscall"
)

// Errno is an error code of the NBD protocol, sent to the client in a
// reply. A Device may return (or wrap) an Errno to choose the code its
// client sees; other errors are mapped by [ErrnoOf].
type Errno uint32

// NBD error codes. Their values equal the Linux errno values of the same
// name, as the protocol requires.
const (
	EPERM     Errno = 1
	EIO       Errno = 5
	ENOMEM    Errno = 12
	EINVAL    Errno = 22
	ENOSPC    Errno = 28
	EOVERFLOW Errno = 75
	ENOTSUP   Errno = 95
	ESHUTDOWN Errno = 108
)

// Symbol returns the C name of the code, such as "ENOSPC".
func (e Errno) Symbol() string {
	switch e {
	case EPERM:
		return "EPERM"
	case EIO:
		return "EIO"
	case ENOMEM:
		return "ENOMEM"
	case EINVAL:
		return "EINVAL"
	case ENOSPC:
		return "ENOSPC"
	case EOVERFLOW:
		return "EOVERFLOW"
	case ENOTSUP:
		return "ENOTSUP"
	case ESHUTDOWN:
		return "ESHUTDOWN"
	}
	return fmt.Sprintf("Errno(%d)", uint32(e))
}

func (e Errno) Error() string { return "nbd: " + e.Symbol() }

// ErrnoOf returns the NBD code for a Device error: the [Errno] it wraps if
// any; ENOSPC for ENOSPC, EDQUOT and EFBIG; EPERM for EPERM, EACCES and
// EROFS; ENOTSUP for errors.ErrUnsupported and EOPNOTSUPP; EINVAL,
// EOVERFLOW and ENOMEM for the same errnos; EIO otherwise.
func ErrnoOf(err error) Errno {
	var e Errno
	switch {
	case err == nil:
		return 0
	case errors.As(err, &e):
		return e
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.EFBIG):
		return ENOSPC
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EROFS):
		return EPERM
	case errors.Is(err, errors.ErrUnsupported), errors.Is(err, syscall.ENOTSUP), errors.Is(err, syscall.EOPNOTSUPP):
		return ENOTSUP
	case errors.Is(err, syscall.EINVAL):
		return EINVAL
	case errors.Is(err, syscall.EOVERFLOW):
		return EOVERFLOW
	case errors.Is(err, syscall.ENOMEM):
		return ENOMEM
	}
	return EIO
}

// Errors of the server itself.
var (
	// ErrProtocol reports a peer that broke the protocol (bad magic, an
	// unknown client flag, oversized option data); the connection is
	// dropped.
	ErrProtocol = errors.New("nbd: protocol violation")
	// ErrAborted reports a client that ended the handshake with
	// NBD_OPT_ABORT or asked for an export that does not exist with
	// NBD_OPT_EXPORT_NAME.
	ErrAborted = errors.New("nbd: client ended the handshake")
	// ErrConfig reports an invalid [Config].
	ErrConfig = errors.New("nbd: invalid configuration")
)
