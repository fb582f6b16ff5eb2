package xenctl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/xentmem/xentmem/hypercall"
)

// HostPaths are the files that tell whether this is a Xen dom0. Empty
// fields mean the standard locations.
type HostPaths struct {
	SysHypervisor string // default /sys/hypervisor
	ProcXen       string // default /proc/xen
}

func (p HostPaths) sys() string {
	if p.SysHypervisor == "" {
		return "/sys/hypervisor"
	}
	return p.SysHypervisor
}

func (p HostPaths) proc() string {
	if p.ProcXen == "" {
		return "/proc/xen"
	}
	return p.ProcXen
}

// ErrNoXen means this machine is not a usable Xen dom0; the error that
// wraps it says which piece is missing.
var ErrNoXen = errors.New("no usable Xen dom0 here")

// Diagnose turns a failure to reach Xen (opening privcmd, or the first
// hypercall answering EPERM) into an error that names what is missing: Xen
// itself, the privcmd device, root, or dom0. It wraps ErrNoXen and err.
func Diagnose(paths HostPaths, err error) error {
	typ, terr := os.ReadFile(filepath.Join(paths.sys(), "type"))
	underXen := terr == nil && strings.TrimSpace(string(typ)) == "xen"
	caps, cerr := os.ReadFile(filepath.Join(paths.proc(), "capabilities"))
	domU := cerr == nil && !strings.Contains(string(caps), "control_d")
	var reason string
	switch {
	case errors.Is(err, hypercall.ErrPermission):
		reason = "permission denied on the privcmd device: run as root"
	case errors.Is(err, hypercall.ErrNoDevice) && !underXen:
		reason = "/dev/xen/privcmd does not exist and " + filepath.Join(paths.sys(), "type") + " does not say xen: this machine is not running under Xen"
	case errors.Is(err, hypercall.ErrNoDevice) && domU:
		reason = "/dev/xen/privcmd does not exist: this is a Xen guest (domU), not dom0"
	case errors.Is(err, hypercall.ErrNoDevice):
		reason = "/dev/xen/privcmd does not exist: load the driver (modprobe xen_privcmd) in dom0"
	case errors.Is(err, hypercall.EPERM) && domU:
		reason = "Xen refused the hypercall (EPERM): this is a Xen guest (domU), not dom0"
	case errors.Is(err, hypercall.EPERM):
		reason = "Xen refused the hypercall (EPERM): not dom0, or an XSM policy denies it"
	default:
		return err
	}
	return &noXenError{reason: reason, err: err}
}

// noXenError matches ErrNoXen and the underlying error, and prints only the
// diagnosis: the underlying error says the same thing in lower-level terms.
type noXenError struct {
	reason string
	err    error
}

func (e *noXenError) Error() string   { return ErrNoXen.Error() + ": " + e.reason }
func (e *noXenError) Unwrap() []error { return []error{ErrNoXen, e.err} }
