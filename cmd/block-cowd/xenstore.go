package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// xenstore is the part of xenstored the script uses. Paths are as libxl
// passes them: XENBUS_PATH is relative to dom0's home (/local/domain/0),
// and absolute paths start with '/'.
type xenstore interface {
	Read(path string) (string, error)
	Write(path, value string) error
}

// errNoNode is matched by a Read of a node that does not exist.
var errNoNode = errors.New("no such xenstore node")

// xenstoreCmd talks to xenstored through the xenstore-read and
// xenstore-write commands of the Xen tools, as Xen's own hotplug scripts
// do. Dir, if set, is where the commands are (else $PATH).
type xenstoreCmd struct {
	Dir     string
	Timeout time.Duration
}

var _ xenstore = (*xenstoreCmd)(nil)

func (x *xenstoreCmd) run(name string, args ...string) (string, error) {
	if x.Dir != "" {
		name = x.Dir + "/" + name
	}
	ctx, cancel := context.WithTimeout(context.Background(), x.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("%s %s: %s", name, strings.Join(args, " "), msg)
	}
	return stdout.String(), nil
}

// Read returns the value of path; a missing node (xenstore-read fails
// with "couldn't read") matches errNoNode.
func (x *xenstoreCmd) Read(path string) (string, error) {
	out, err := x.run("xenstore-read", path)
	if err != nil {
		if strings.Contains(err.Error(), "couldn't read") {
			return "", fmt.Errorf("%w: %v", errNoNode, err)
		}
		return "", err
	}
	return strings.TrimSuffix(out, "\n"), nil
}

// Write sets path to value.
func (x *xenstoreCmd) Write(path, value string) error {
	_, err := x.run("xenstore-write", path, value)
	return err
}
