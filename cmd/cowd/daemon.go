package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// childEnv marks the re-executed daemon; its value is the fd number of the
// pipe on which the child reports readiness.
const childEnv = "COWD_DAEMON_READY_FD"

// daemonize re-executes cowd in a new session and waits until the child
// reports that it serves (exit 0) or failed (exit 1, with its message).
// The child's stdin and stdout are /dev/null; it keeps the parent's stderr
// for its logs unless --log is given (then stderr is /dev/null too, so a
// caller reading the parent's output to the end does not wait for the
// daemon).
func daemonize(o *options, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "cowd: daemonise: %v\n", err)
		return 1
	}
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(stderr, "cowd: daemonise: %v\n", err)
		return 1
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), childEnv+"=3")
	cmd.ExtraFiles = []*os.File{w} // fd 3 in the child
	if o.logFile == "" {
		cmd.Stderr = os.Stderr
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "cowd: daemonise: %v\n", err)
		return 1
	}
	w.Close()
	msg, _ := io.ReadAll(r)
	r.Close()
	if bytes.HasPrefix(msg, []byte("ok")) {
		cmd.Process.Release()
		return 0
	}
	if len(msg) == 0 {
		err := cmd.Wait()
		fmt.Fprintf(stderr, "cowd: daemon exited before serving: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "%s\n", bytes.TrimSpace(msg))
	cmd.Wait()
	return 1
}

// readiness reports to a waiting parent, if there is one.
type readiness struct {
	f *os.File
}

// newReadiness returns the notifier of a daemon child; in the foreground
// it does nothing.
func newReadiness() *readiness {
	v := os.Getenv(childEnv)
	if v == "" {
		return &readiness{}
	}
	os.Unsetenv(childEnv)
	fd, err := strconv.Atoi(v)
	if err != nil {
		return &readiness{}
	}
	return &readiness{f: os.NewFile(uintptr(fd), "cowd-ready")}
}

func (r *readiness) isChild() bool { return r.f != nil }

// done sends "ok" or the error, once.
func (r *readiness) done(err error) {
	if r.f == nil {
		return
	}
	if err == nil {
		io.WriteString(r.f, "ok\n")
	} else {
		io.WriteString(r.f, err.Error()+"\n")
	}
	r.f.Close()
	r.f = nil
}
