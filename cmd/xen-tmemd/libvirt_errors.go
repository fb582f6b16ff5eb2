package main

import (
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/digitalocean/go-libvirt"
)

// Sentinels for libvirt failures. Errors returned by the libvirt source match
// them with errors.Is; [libvirtError] does the mapping.
var (
	// errLibvirtNoDomain: the domain does not exist (VIR_ERR_NO_DOMAIN).
	errLibvirtNoDomain = errors.New("domain not found")
	// errLibvirtNoMetadata: the domain has no metadata element in the
	// requested namespace (VIR_ERR_NO_DOMAIN_METADATA).
	errLibvirtNoMetadata = errors.New("metadata not found")
	// errLibvirtNoSupport: the driver or daemon lacks the call
	// (VIR_ERR_NO_SUPPORT, VIR_ERR_OPERATION_UNSUPPORTED, or an RPC
	// procedure the daemon does not know).
	errLibvirtNoSupport = errors.New("operation not supported")
	// errLibvirtInvalid: the call does not fit the domain's state
	// (VIR_ERR_OPERATION_INVALID), e.g. destroying a domain that is off.
	errLibvirtInvalid = errors.New("operation invalid")
	// errLibvirtNoDriver: libvirtd has no driver for the URI
	// (VIR_ERR_NO_CONNECT), e.g. xen:///system without the libxl driver.
	errLibvirtNoDriver = errors.New("no driver for the URI")
	// errLibvirtDisconnected: the connection to libvirtd is gone (daemon
	// exited, socket closed, or a call was interrupted by the drop).
	errLibvirtDisconnected = errors.New("not connected")
	// errLibvirtTimeout: a call did not complete within the call timeout;
	// the connection is then treated as broken and closed.
	errLibvirtTimeout = errors.New("call timed out")
)

// libvirtCodes maps libvirt error numbers to sentinels.
var libvirtCodes = map[libvirt.ErrorNumber]error{
	libvirt.ErrNoDomain:             errLibvirtNoDomain,
	libvirt.ErrNoDomainMetadata:     errLibvirtNoMetadata,
	libvirt.ErrNoSupport:            errLibvirtNoSupport,
	libvirt.ErrOperationUnsupported: errLibvirtNoSupport,
	libvirt.ErrOperationInvalid:     errLibvirtInvalid,
	libvirt.ErrNoConnect:            errLibvirtNoDriver,
}

// lvError is an error from go-libvirt, classified. It unwraps to both the
// original error (so errors.As finds a libvirt.Error, and errors.Is finds
// libvirt.ErrInterrupted or syscall.EINVAL) and the matching sentinel.
type lvError struct {
	err  error // as go-libvirt returned it
	kind error // one of the errLibvirt* sentinels, or nil
	hint string
}

func (e *lvError) Error() string {
	msg := e.err.Error()
	var le libvirt.Error
	if errors.As(e.err, &le) {
		msg += " (" + libvirt.ErrorNumber(le.Code).String() + ")"
	}
	if e.hint != "" {
		msg += "; " + e.hint
	}
	return msg
}

func (e *lvError) Unwrap() []error {
	if e.kind == nil {
		return []error{e.err}
	}
	return []error{e.err, e.kind}
}

// libvirtError classifies an error returned by go-libvirt so that errors.Is
// works with the errLibvirt* sentinels. go-libvirt's libvirt.Error carries a
// code but has no Is or Unwrap method, and its transport failures are bare
// errors. It returns nil for nil, and err itself when it is already
// classified. Errors it does not recognise are wrapped without a sentinel.
func libvirtError(err error) error {
	if err == nil {
		return nil
	}
	var done *lvError
	if errors.As(err, &done) {
		return err
	}
	e := &lvError{err: err}
	var le libvirt.Error
	switch {
	case errors.As(err, &le):
		e.kind = libvirtCodes[libvirt.ErrorNumber(le.Code)]
		if e.kind == errLibvirtNoDriver {
			e.hint = "is the hypervisor driver installed (libvirt-daemon-driver-xen on Xen)?"
		}
	case errors.Is(err, libvirt.ErrUnsupported):
		e.kind = errLibvirtNoSupport
	case errors.Is(err, libvirt.ErrInterrupted),
		// go-libvirt's socket returns a bare EINVAL for a call made after
		// the connection dropped.
		errors.Is(err, syscall.EINVAL),
		errors.Is(err, net.ErrClosed),
		errors.Is(err, io.EOF),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNRESET):
		e.kind = errLibvirtDisconnected
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT):
		e.kind = errLibvirtDisconnected
		e.hint = "is libvirtd running?"
	}
	return e
}
