//go:build !linux

package nbd

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
)

func TestKernelStubs(t *testing.T) {
	srv, err := NewServer(&Config{Exports: []Export{{Name: "x", Device: nullDevice{}, Size: 1 << 20}}})
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), runtime.GOOS) {
			t.Errorf("%s: %v, want an error naming %s and wrapping errors.ErrUnsupported", name, err, runtime.GOOS)
		}
	}
	a, err := srv.Attach(context.Background(), &AttachConfig{Device: "/dev/nbd0"})
	if a != nil {
		t.Error("Attach returned an Attachment")
	}
	check("Attach", err)
	_, err = srv.Attach(context.Background(), nil)
	check("Attach(nil)", err)
	check("Detach", (&Attachment{device: "/dev/nbd0"}).Detach(context.Background()))
}
