// Command block-cowd is the xl/libxl block hotplug script for disks
// served by cowd:
//
//	disk = [ 'vdev=xvda, access=rw, script=block-cowd, target=dscow:/var/lib/xen/cow/vm1.dscow:/var/lib/xen/images/golden.img' ]
//
// libxl runs /etc/xen/scripts/block-cowd (a shell wrapper, docs/hotplug/)
// with "add" or "remove" and XENBUS_PATH in the environment. On add it
// reads the target from the backend's xenstore "params", asks xen-tmemd to
// attach the disk (cowd on a free /dev/nbdN), and writes physical-device
// and physical-device-path for blkback; failures go to hotplug-error and
// hotplug-status as with Xen's own scripts. On remove it detaches.
// docs/hotplug.md has the details.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/xentmem/xentmem/internal/control"
)

// defaultConfigFile is xen-tmemd's configuration; the script reads the
// control socket from it.
const defaultConfigFile = "/etc/xen-tmemd.toml"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses [--config FILE] [--socket PATH] add|remove and runs the
// script with the real xenstore tools.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	cfgFile, socket := defaultConfigFile, ""
	for len(args) >= 2 && (args[0] == "--config" || args[0] == "--socket") {
		if args[0] == "--config" {
			cfgFile = args[1]
		} else {
			socket = args[1]
		}
		args = args[2:]
	}
	if len(args) < 1 {
		fmt.Fprintln(stderr, "usage: block-cowd [--config FILE] [--socket PATH] add|remove (XENBUS_PATH in the environment)")
		return 1
	}
	if socket == "" {
		var err error
		if socket, err = configSocket(cfgFile); err != nil {
			fmt.Fprintf(stderr, "block-cowd: warning: %v; using %s\n", err, control.DefaultSocket)
			socket = control.DefaultSocket
		}
	}
	s := &script{xs: &xenstoreCmd{Timeout: 10 * time.Second}, socket: socket, timeout: 35 * time.Second,
		stderr: stderr, statDev: statBlockDev}
	return s.run(ctx, args[0], getenv("XENBUS_PATH"))
}

// configSocket reads [daemon] socket from xen-tmemd's configuration; a
// missing file or key means the default.
func configSocket(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return control.DefaultSocket, nil
	}
	if err != nil {
		return "", err
	}
	var f struct {
		Daemon struct {
			Socket string `toml:"socket"`
		} `toml:"daemon"`
	}
	if _, err := toml.Decode(string(b), &f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if f.Daemon.Socket == "" {
		return control.DefaultSocket, nil
	}
	return f.Daemon.Socket, nil
}
