package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/xentmem/xentmem/internal/control"
)

// Backend nodes this script writes besides Xen's standard ones: what
// remove needs to find the attachment again, after the domain's own
// xenstore directory may be gone.
const (
	nodeDomain = "cowd-domain"
	nodeDisk   = "cowd-disk"
)

// script is one run of the hotplug script.
type script struct {
	xs      xenstore
	socket  string        // xen-tmemd's control socket
	timeout time.Duration // for the whole add (libxl kills the script at 40 s)
	stderr  io.Writer     // ends up in /var/log/xen/xen-hotplug.log
	statDev func(path string) (major, minor uint32, err error)
}

// attachResult is the part of the daemon's cowd-attach reply we need.
type attachResult struct {
	NBDDevice string `json:"nbd_device"`
	Link      string `json:"link"`
	PID       int    `json:"pid"`
}

// run executes "add" or "remove" for the backend at be (XENBUS_PATH) and
// returns the exit status.
func (s *script) run(ctx context.Context, command, be string) int {
	if be == "" {
		fmt.Fprintln(s.stderr, "block-cowd: XENBUS_PATH is not set (libxl runs this script with it; see docs/hotplug.md)")
		return 1
	}
	switch command {
	case "add":
		if err := s.add(ctx, be); err != nil {
			return s.fatal(be, err)
		}
		return 0
	case "remove":
		if err := s.remove(ctx, be); err != nil {
			fmt.Fprintf(s.stderr, "block-cowd: %s: remove: %v\n", be, err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(s.stderr, "block-cowd: unknown command %q: want add or remove\n", command)
	return 1
}

// fatal reports a failed add the way Xen's block-common.sh does:
// hotplug-error holds the message, hotplug-status is "error".
func (s *script) fatal(be string, err error) int {
	msg := err.Error()
	fmt.Fprintf(s.stderr, "block-cowd: %s: %s\n", be, msg)
	if werr := s.xs.Write(be+"/hotplug-error", msg); werr != nil {
		fmt.Fprintf(s.stderr, "block-cowd: %s: write hotplug-error: %v\n", be, werr)
	}
	if werr := s.xs.Write(be+"/hotplug-status", "error"); werr != nil {
		fmt.Fprintf(s.stderr, "block-cowd: %s: write hotplug-status: %v\n", be, werr)
	}
	return 1
}

// add asks xen-tmemd to serve the target with cowd on a kernel NBD device
// and hands that device to blkback.
func (s *script) add(ctx context.Context, be string) error {
	params, err := s.xs.Read(be + "/params")
	if err != nil {
		return fmt.Errorf("read params: %w", err)
	}
	t, err := parseParams(params)
	if err != nil {
		return err
	}
	domain, disk, err := s.identify(be)
	if err != nil {
		return err
	}
	if mode, err := s.xs.Read(be + "/mode"); err == nil && !strings.Contains(mode, "w") {
		fmt.Fprintf(s.stderr, "block-cowd: %s: mode %q: cowd serves read-write; the guest's frontend enforces read-only\n", be, mode)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cl, err := control.Dial(ctx, s.socket)
	if err != nil {
		return err
	}
	defer cl.Close()
	var res attachResult
	err = cl.Call(ctx, control.OpCowdAttach, &control.CowdAttachArgs{Domain: domain, Disk: disk, Base: t.Base,
		CowFile: t.Cow, Format: t.Format, NBDDevice: "auto"}, &res)
	if err != nil {
		return fmt.Errorf("xen-tmemd: attach %s for %s/%s: %w", t.Cow, domain, disk, err)
	}
	if err := s.writeDev(be, domain, disk, res.NBDDevice); err != nil {
		dctx, dcancel := context.WithTimeout(context.Background(), s.timeout)
		defer dcancel()
		if derr := cl.Call(dctx, control.OpCowdDetach, &control.CowdDetachArgs{Domain: domain, Disk: disk}, nil); derr != nil {
			fmt.Fprintf(s.stderr, "block-cowd: %s: undo attach: %v\n", be, derr)
		}
		return err
	}
	fmt.Fprintf(s.stderr, "block-cowd: %s: %s/%s: %s on %s (cowd pid %d)\n", be, domain, disk, t.Cow, res.NBDDevice, res.PID)
	return nil
}

// identify names the attachment: the guest's name (dom<ID> if xenstore
// has none) and the virtual device (the backend's dev node).
func (s *script) identify(be string) (domain, disk string, err error) {
	fe, err := s.xs.Read(be + "/frontend-id")
	if err != nil {
		return "", "", fmt.Errorf("read frontend-id: %w", err)
	}
	id, err := strconv.ParseUint(strings.TrimSpace(fe), 10, 16)
	if err != nil {
		return "", "", fmt.Errorf("frontend-id %q: %w", fe, err)
	}
	domain = "dom" + strconv.FormatUint(id, 10)
	if n, err := s.xs.Read("/local/domain/" + strconv.FormatUint(id, 10) + "/name"); err == nil && strings.TrimSpace(n) != "" {
		domain = strings.TrimSpace(n)
	}
	disk, err = s.xs.Read(be + "/dev")
	if err != nil || strings.TrimSpace(disk) == "" {
		disk = "vbd-" + path.Base(be) // the devid
	}
	return domain, strings.TrimSpace(disk), nil
}

// writeDev is block-common.sh's write_dev: physical-device (hex
// major:minor), physical-device-path, then hotplug-status=connected. It
// also records what remove needs.
func (s *script) writeDev(be, domain, disk, dev string) error {
	if dev == "" {
		return errors.New("xen-tmemd attached the disk without an NBD device")
	}
	major, minor, err := s.statDev(dev)
	if err != nil {
		return err
	}
	for _, kv := range [][2]string{
		{"node", dev},
		{nodeDomain, domain},
		{nodeDisk, disk},
		{"physical-device", fmt.Sprintf("%x:%x", major, minor)},
		{"physical-device-path", dev},
		{"hotplug-status", "connected"},
	} {
		if err := s.xs.Write(be+"/"+kv[0], kv[1]); err != nil {
			return fmt.Errorf("write %s: %w", kv[0], err)
		}
	}
	return nil
}

// remove detaches what add attached. libxl ignores its failure apart from
// logging, so a missing record or daemon is reported and nothing more.
func (s *script) remove(ctx context.Context, be string) error {
	domain, err1 := s.xs.Read(be + "/" + nodeDomain)
	disk, err2 := s.xs.Read(be + "/" + nodeDisk)
	if err1 != nil || err2 != nil {
		if errors.Is(err1, errNoNode) && errors.Is(err2, errNoNode) {
			return nil // add never got that far: nothing to undo
		}
		return fmt.Errorf("read %s, %s: %w", nodeDomain, nodeDisk, errors.Join(err1, err2))
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cl, err := control.Dial(ctx, s.socket)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Call(ctx, control.OpCowdDetach, &control.CowdDetachArgs{Domain: domain, Disk: disk}, nil); err != nil {
		return fmt.Errorf("xen-tmemd: detach %s/%s: %w", domain, disk, err)
	}
	return nil
}

// statBlockDev returns the major and minor number of a block device.
func statBlockDev(p string) (uint32, uint32, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return 0, 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || fi.Mode()&os.ModeDevice == 0 || fi.Mode()&os.ModeCharDevice != 0 {
		return 0, 0, fmt.Errorf("%s is not a block device", p)
	}
	rdev := uint64(st.Rdev)
	major := uint32((rdev>>8)&0xfff | (rdev>>32)&^0xfff)
	minor := uint32(rdev&0xff | (rdev>>12)&^0xff)
	return major, minor, nil
}
