// Command xentmem-hook is the libvirt hook of the xentmem tools for the
// libxl (Xen) driver. libvirt runs it as
//
//	/etc/libvirt/hooks/libxl.d/xentmem DOMAIN OPERATION SUBOP EXTRA
//
// with the domain XML on stdin. On "prepare" it asks xen-tmemd to reserve
// the domain's memory (plus <tmem:reserve-mib>) and to attach the cowd disks
// the domain's metadata declares; on "started" it applies the tmem weight
// and compression; on "release" it detaches the cowd disks. It never calls
// libvirt (the daemon waits for the hook: that would deadlock).
//
// docs/metadata.md describes the metadata and docs/operations.md the
// messages and the behaviour when xen-tmemd is not running.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses the optional leading --config FILE and --socket PATH (for use
// by hand; libvirt passes neither) and runs the hook.
func run(ctx context.Context, args []string, stdin io.Reader, stderr io.Writer) int {
	cfgFile, socket := defaultConfigFile, ""
	for len(args) >= 2 && (args[0] == "--config" || args[0] == "--socket") {
		if args[0] == "--config" {
			cfgFile = args[1]
		} else {
			socket = args[1]
		}
		args = args[2:]
	}
	cfg, err := loadHookConfig(cfgFile)
	if err != nil {
		fmt.Fprintf(stderr, "xentmem-hook: warning: %v; using the defaults\n", err)
	}
	if socket != "" {
		cfg.Socket = socket
	}
	h := &hook{cfg: cfg, stderr: stderr}
	return h.run(ctx, args, stdin)
}
