//go:build !linux

package nbd

import (
	"context"
	"errors"
	"fmt"
	"runtime"
)

// attachSys is empty: there is no kernel nbd client outside Linux.
type attachSys struct{}

func errNoKernel(device string) error {
	return fmt.Errorf("nbd: attach %s: the kernel nbd client needs linux, not %s: %w",
		device, runtime.GOOS, errors.ErrUnsupported)
}

// Attach connects an export to the Linux kernel's nbd driver; on this
// system it returns an error wrapping errors.ErrUnsupported.
func (s *Server) Attach(ctx context.Context, cfg *AttachConfig) (*Attachment, error) {
	dev := ""
	if cfg != nil {
		dev = cfg.Device
	}
	return nil, errNoKernel(dev)
}

func (a *Attachment) detach(context.Context) error { return errNoKernel(a.device) }
