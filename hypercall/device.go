package hypercall

import "errors"

// ErrNoDevice means the Xen privcmd device does not exist here: not a Xen
// host, not dom0, or the driver is not loaded.
var ErrNoDevice = errors.New("hypercall: no Xen privcmd device")

// ErrPermission means the device exists but may not be opened: not root.
var ErrPermission = errors.New("hypercall: permission denied")

// ErrNotSupported is returned on operating systems without privcmd.
var ErrNotSupported = errors.New("not supported")
