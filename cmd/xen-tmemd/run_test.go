package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xentmem/xentmem/internal/control"
)

// The tests in this file run the daemon as the administrator does: the
// binary built from this package, as a subprocess, with flags, a config
// file, signals, a pid file and the control socket.

// buildDaemon builds xen-tmemd into dir.
func buildDaemon(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "xen-tmemd")
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool to build the daemon: %v", err)
	}
	out, err := exec.Command(goTool, "build", "-o", bin, "github.com/xentmem/xentmem/cmd/xen-tmemd").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// lockedBuffer collects a process's stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// logLines returns the JSON log lines whose msg is msg.
func (l *lockedBuffer) logLines(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// daemonProc is a running xen-tmemd.
type daemonProc struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{}
	err    error // Wait's result, once done is closed
}

func startDaemonProc(t *testing.T, bin string, args ...string) *daemonProc {
	t.Helper()
	p := &daemonProc{cmd: exec.Command(bin, args...), stderr: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("xen-tmemd stderr:\n%s", p.stderr)
		}
	})
	return p
}

// exit waits for the process to end and returns its exit code.
func (p *daemonProc) exit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("xen-tmemd still running after %v", within)
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("wait: %v", p.err)
	return -1
}

func (p *daemonProc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// procWaitFor polls cond until it holds or within passes.
func procWaitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// procStatus asks the daemon on socket for its status.
func procStatus(socket string) (*StatusResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cl, err := control.Dial(ctx, socket)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var st StatusResult
	if err := cl.Call(ctx, control.OpStatus, nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

const procConfig = `
[daemon]
interval = "100ms"
log_format = "json"
dry_run = %s

[sim]
memory_mib = 1024
dom0_mib = 256

[[sim.guest]]
name = "web1"
memory_mib = 64
workload = "zipf"
working_mib = 16
cache_mib = 2
rate = 2000

[[sim.guest]]
name = "swap1"
memory_mib = 64
workload = "frontswap"
working_mib = 8
cache_mib = 2
rate = 1000
`

func writeProcConfig(t *testing.T, path string, dryRun bool) {
	t.Helper()
	text := strings.Replace(procConfig, "%s", strconv.FormatBool(dryRun), 1)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRunInProcess runs run() itself: it gets ready, serves, and when its
// context ends it returns nil with the socket and the pid file gone. Bad
// invocations return the error main turns into exit status 2.
func TestRunInProcess(t *testing.T) {
	dir := t.TempDir()
	socket, pidFile := filepath.Join(dir, "control.sock"), filepath.Join(dir, "pid")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--hypervisor=sim", "--socket", socket, "--pid-file", pidFile, "--interval=20ms", "--log-format=json"}, &stderr)
	}()
	procWaitFor(t, 10*time.Second, "ticks", func() bool {
		st, err := procStatus(socket)
		return err == nil && st.Ticks > 2 && st.Mode == "sim"
	})
	if b, err := os.ReadFile(pidFile); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("pid file %q %v", b, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	for _, f := range []string{socket, pidFile} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", f, err)
		}
	}
	if len(stderr.logLines("ready")) != 1 || len(stderr.logLines("stopping")) != 1 {
		t.Errorf("log:\n%s", stderr.String())
	}

	for _, tc := range []struct {
		args []string
		want error
	}{
		{[]string{"--bogus"}, errUsage},
		{[]string{"--interval=5"}, errUsage},
		{[]string{"--sim-memory-mib=lots"}, errUsage},
		{[]string{"--hypervisor=kvm"}, errConfig},
		{[]string{"--interval=1ms"}, errConfig},
		{[]string{"--sim-memory-mib=100"}, errConfig},
		{[]string{"--help"}, flag.ErrHelp},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			if err := run(context.Background(), tc.args, io.Discard); !errors.Is(err, tc.want) {
				t.Errorf("run: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDaemonProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs xen-tmemd; not in -short mode")
	}
	bin := buildDaemon(t, t.TempDir())

	t.Run("lifecycle", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		cfg, socket, pidFile := filepath.Join(dir, "tmemd.toml"), filepath.Join(dir, "run", "control.sock"), filepath.Join(dir, "xen-tmemd.pid")
		writeProcConfig(t, cfg, false)
		start := time.Now()
		p := startDaemonProc(t, bin, "--hypervisor=sim", "--config", cfg, "--socket", socket, "--pid-file", pidFile)

		// Ready: logged (after the first tick), the socket answers status,
		// the simulated guests are there and have tmem clients.
		var st *StatusResult
		procWaitFor(t, 10*time.Second, "ready, with 2 tmem clients", func() bool {
			var err error
			st, err = procStatus(socket)
			return err == nil && st.Clients == 2 && len(p.stderr.logLines("ready")) > 0
		})
		t.Logf("ready with both guests' clients after %v", time.Since(start).Round(time.Millisecond))
		if st.Mode != "sim" || st.Domains != 3 || !st.TmemOK || st.DryRun {
			t.Errorf("status %+v", st)
		}
		if fi, err := os.Stat(socket); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("socket %v %v, want mode 0600", fi, err)
		}
		if b, err := os.ReadFile(pidFile); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(p.cmd.Process.Pid) {
			t.Errorf("pid file %q %v, want %d", b, err, p.cmd.Process.Pid)
		}
		if n := len(p.stderr.logLines("ready")); n != 1 {
			t.Errorf("%d ready lines", n)
		}

		// SIGHUP with a changed file: the change shows in status.
		writeProcConfig(t, cfg, true)
		p.signal(t, syscall.SIGHUP)
		procWaitFor(t, 5*time.Second, "dry_run and the reload logged after SIGHUP", func() bool {
			st, err := procStatus(socket)
			return err == nil && st.DryRun && len(p.stderr.logLines("configuration reloaded")) == 1
		})

		// SIGHUP with a broken file: logged, the running configuration
		// stays, and the daemon keeps working.
		if err := os.WriteFile(cfg, []byte("[daemon]\ninterval = \"fast\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		p.signal(t, syscall.SIGHUP)
		procWaitFor(t, 5*time.Second, "reload failure logged", func() bool {
			return len(p.stderr.logLines("reload failed; keeping the running configuration")) == 1
		})
		failed := p.stderr.logLines("reload failed; keeping the running configuration")[0]
		if e, _ := failed["error"].(string); !strings.Contains(e, "fast") || failed["level"] != "error" {
			t.Errorf("reload failure logged as %v", failed)
		}
		before, err := procStatus(socket)
		if err != nil {
			t.Fatal(err)
		}
		procWaitFor(t, 5*time.Second, "ticks going on after the failed reload", func() bool {
			st, err := procStatus(socket)
			return err == nil && st.Ticks > before.Ticks+2 && st.DryRun && st.LastError == ""
		})

		// SIGTERM: exit 0, pid file and socket gone.
		p.signal(t, syscall.SIGTERM)
		if code := p.exit(t, 10*time.Second); code != 0 {
			t.Errorf("exit code %d after SIGTERM, want 0", code)
		}
		for _, f := range []string{pidFile, socket} {
			if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s left behind: %v", f, err)
			}
		}
		if n := len(p.stderr.logLines("stopping")); n != 1 {
			t.Errorf("%d stopping lines", n)
		}
	})

	t.Run("bad invocations", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		broken := filepath.Join(dir, "broken.toml")
		if err := os.WriteFile(broken, []byte("[daemon]\nintervall = \"1s\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		badGuest := filepath.Join(dir, "guest.toml")
		if err := os.WriteFile(badGuest, []byte("[[sim.guest]]\nname = \"a\"\nmemory_mib = 64\nworkload = \"bitcoin\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		socket := filepath.Join(dir, "control.sock")
		for _, tc := range []struct {
			name     string
			args     []string
			wantCode int
			wantMsg  string // the last line of stderr contains it
		}{
			{"unknown flag", []string{"--bogus"}, 2, "xen-tmemd: usage: flag provided but not defined: -bogus"},
			{"stray argument", []string{"--hypervisor=sim", "now"}, 2, `xen-tmemd: usage: unexpected argument "now"`},
			{"bad interval", []string{"--interval=5"}, 2, `--interval "5"`},
			{"interval out of range", []string{"--interval=2h"}, 2, "daemon.interval 2h0m0s: want 10ms–1h"},
			{"bad hypervisor", []string{"--hypervisor=kvm"}, 2, `hypervisor.mode "kvm": want auto, xen or sim`},
			{"bad log level", []string{"--log-level=loud"}, 2, `daemon.log_level "loud"`},
			{"missing config", []string{"--config", filepath.Join(dir, "nope.toml")}, 2, "nope.toml: no such file or directory"},
			{"unknown config key", []string{"--config", broken}, 2, `unknown key "daemon.intervall"`},
			{"bad guest workload", []string{"--config", badGuest}, 2, `workload "bitcoin"`},
			{"xen without xen", []string{"--hypervisor=xen", "--socket", socket}, 1, "xen-tmemd: no usable Xen dom0 here"},
			{"help", []string{"--help"}, 0, "xen-tmemd --dry-run --log-format=json"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if tc.args[0] == "--hypervisor=xen" {
					if _, err := os.Stat("/dev/xen/privcmd"); err == nil {
						t.Skip("this machine has /dev/xen/privcmd")
					}
				}
				p := startDaemonProc(t, bin, tc.args...)
				if code := p.exit(t, 10*time.Second); code != tc.wantCode {
					t.Errorf("exit code %d, want %d", code, tc.wantCode)
				}
				lines := strings.Split(strings.TrimSpace(p.stderr.String()), "\n")
				if last := lines[len(lines)-1]; !strings.Contains(last, tc.wantMsg) {
					t.Errorf("last line of stderr %q, want it to contain %q", last, tc.wantMsg)
				}
			})
		}
		if _, err := os.Stat(socket); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a failed start left the socket: %v", err)
		}
	})

	t.Run("unwritable pid file", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		socket := filepath.Join(dir, "control.sock")
		// A path under a regular file cannot be created, even by root.
		pidFile := filepath.Join(dir, "file", "xen-tmemd.pid")
		if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		p := startDaemonProc(t, bin, "--hypervisor=sim", "--socket", socket, "--pid-file", pidFile, "--interval=50ms", "--log-format=json")
		procWaitFor(t, 10*time.Second, "status", func() bool {
			st, err := procStatus(socket)
			return err == nil && st.Ticks > 1
		})
		lines := p.stderr.logLines("cannot write the pid file; continuing without it")
		if len(lines) != 1 || lines[0]["path"] != pidFile || !strings.Contains(lines[0]["error"].(string), "not a directory") {
			t.Errorf("pid file failure logged as %v", lines)
		}
		p.signal(t, syscall.SIGTERM)
		if code := p.exit(t, 10*time.Second); code != 0 {
			t.Errorf("exit code %d after SIGTERM", code)
		}
	})

	t.Run("SIGHUP as soon as the socket answers", func(t *testing.T) {
		// The socket listens before the daemon is ready; a SIGHUP sent
		// then must reload, not kill (its default action).
		t.Parallel()
		dir := t.TempDir()
		for i := range 5 {
			socket := filepath.Join(dir, "s"+strconv.Itoa(i)+".sock")
			// Metrics and a pid file widen the window between listening and
			// being ready: without SIGHUP caught early, most runs died.
			p := startDaemonProc(t, bin, "--hypervisor=sim", "--socket", socket, "--log-format=json",
				"--metrics-listen=127.0.0.1:0", "--pid-file", filepath.Join(dir, "p"+strconv.Itoa(i)))
			for {
				c, err := net.Dial("unix", socket)
				if err == nil {
					c.Close()
					break
				}
				select {
				case <-p.done:
					t.Fatalf("exited before listening: %v", p.err)
				default:
				}
			}
			p.signal(t, syscall.SIGHUP)
			procWaitFor(t, 5*time.Second, "reload logged", func() bool {
				select {
				case <-p.done:
					t.Fatalf("run %d: SIGHUP right after listening ended the daemon: %v", i, p.err)
				default:
				}
				return len(p.stderr.logLines("configuration reloaded")) == 1
			})
			p.signal(t, syscall.SIGTERM)
			if code := p.exit(t, 10*time.Second); code != 0 {
				t.Fatalf("run %d: exit code %d (%v), want 0", i, code, p.err)
			}
		}
	})

	t.Run("auto without xen says so", func(t *testing.T) {
		t.Parallel()
		if _, err := os.Stat("/dev/xen/privcmd"); err == nil {
			t.Skip("this machine has /dev/xen/privcmd")
		}
		dir := t.TempDir()
		socket := filepath.Join(dir, "control.sock")
		p := startDaemonProc(t, bin, "--socket", socket, "--log-format=json")
		procWaitFor(t, 10*time.Second, "status", func() bool {
			st, err := procStatus(socket)
			return err == nil && st.Mode == "sim"
		})
		found := false
		for _, l := range strings.Split(p.stderr.String(), "\n") {
			if strings.Contains(l, "EMBEDDED SIMULATED HYPERVISOR") && strings.Contains(l, `"level":"warn"`) {
				found = true
			}
		}
		if !found {
			t.Errorf("no loud warning about the simulator")
		}
		p.signal(t, syscall.SIGINT)
		if code := p.exit(t, 10*time.Second); code != 0 {
			t.Errorf("exit code %d after SIGINT", code)
		}
	})
}
