package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/internal/control"
	"github.com/xentmem/xentmem/xenctl"
)

// Exit codes, documented in docs/tmemctl.8 (EXIT STATUS). xl exits 1 for
// usage errors and, in 4.1–4.7, 0 when the hypervisor refused; tmemctl
// tells the cases apart.
const (
	exitOK          = 0
	exitFail        = 1 // the operation failed (Xen or the daemon said no)
	exitUsage       = 2 // bad command line: options, numbers, uuid
	exitUnreachable = 3 // no Xen here and no xen-tmemd (or the daemon is not running)
	exitUnsupported = 4 // this Xen lacks the operation, or has no (enabled) tmem
	exitNoDomain    = 5 // unknown domain
	exitDenied      = 6 // permission denied: not root, not dom0, refused by the daemon
)

// usageError is a command-line mistake: exit 2 with a pointer to --help.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// reachError means no backend could be reached; Code is exitUnreachable or
// exitDenied.
type reachError struct {
	Code int
	Msg  string
	Err  error
}

func (e *reachError) Error() string { return e.Msg }
func (e *reachError) Unwrap() error { return e.Err }

// exitCode maps an error to the documented exit status.
func exitCode(err error) int {
	var ue *usageError
	var re *reachError
	var ce *control.Error
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &re):
		return re.Code
	case errors.As(err, &ce):
		switch ce.Code {
		case control.CodeBadRequest:
			return exitUsage
		case control.CodeNoDomain:
			return exitNoDomain
		case control.CodeUnsupported, control.CodeUnavailable:
			return exitUnsupported
		case control.CodeDenied:
			return exitDenied
		}
		return exitFail
	case errors.Is(err, hypercall.ErrPermission), errors.Is(err, xenctl.ErrPermission):
		return exitDenied
	case errors.Is(err, xenctl.ErrNoXen), errors.Is(err, hypercall.ErrNoDevice):
		return exitUnreachable
	case errors.Is(err, xenctl.ErrNotSupported), errors.Is(err, xenctl.ErrNoTmem), errors.Is(err, xenctl.ErrTmemDisabled):
		return exitUnsupported
	}
	return exitFail
}

// errorLine is the one-line message for err: a daemon error without its
// code prefix, and without the "xenctl: " package prefix, which says
// nothing to an administrator.
func errorLine(err error) string {
	msg := err.Error()
	var ce *control.Error
	if errors.As(err, &ce) {
		msg = ce.Message
	}
	msg = strings.ReplaceAll(msg, "xenctl: ", "")
	msg = strings.ReplaceAll(msg, "\n", " ")
	return msg
}
