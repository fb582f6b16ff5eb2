package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xentmem/xentmem/internal/control"
)

// The tests in this file run the real xen-tmemd (built from ./cmd/xen-tmemd,
// on its embedded simulator) and, for tmux, tmemctl as a real process: this
// test binary with TMEMCTL_TEST_MAIN=1 (see TestMain).

var builds struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// daemonBinary builds xen-tmemd once per test run.
func daemonBinary(t *testing.T) string {
	t.Helper()
	builds.once.Do(func() {
		builds.dir, builds.err = os.MkdirTemp("", "tmemctl-test-")
		if builds.err != nil {
			return
		}
		builds.bin = filepath.Join(builds.dir, "xen-tmemd")
		goTool, err := exec.LookPath("go")
		if err != nil {
			builds.err = err
			return
		}
		cmd := exec.Command(goTool, "build", "-o", builds.bin, "github.com/xentmem/xentmem/cmd/xen-tmemd")
		if out, err := cmd.CombinedOutput(); err != nil {
			builds.err = &buildError{out: string(out), err: err}
		}
	})
	if builds.err != nil {
		t.Fatalf("build xen-tmemd: %v", builds.err)
	}
	return builds.bin
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

func cleanupBuilds() {
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
}

// needDaemon skips the slow end-to-end tests in -short mode (make
// test-short); CI runs them.
func needDaemon(t *testing.T) {
	t.Helper()
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("starts a real xen-tmemd; not in -short mode")
	}
}

const daemonConfig = `
[daemon]
interval = "200ms"
dry_run = true

[sim]
version    = "4.12.4"
memory_mib = 1024
dom0_mib   = 256
seed       = 1

[[sim.guest]]
name = "web1"
memory_mib = 128
workload = "zipf"
working_mib = 256
cache_mib = 16
rate = 4000

[[sim.guest]]
name = "swap1"
memory_mib = 128
workload = "frontswap"
working_mib = 96
cache_mib = 16
rate = 2000
`

// startDaemon runs xen-tmemd on the simulator with two busy guests and
// returns its socket once both guests use tmem.
func startDaemon(t *testing.T) string {
	t.Helper()
	bin := daemonBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "xen-tmemd.toml")
	if err := os.WriteFile(cfg, []byte(daemonConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "control.sock")
	var logBuf bytes.Buffer
	cmd := exec.Command(bin, "--hypervisor=sim", "--config", cfg, "--socket", sock, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("xen-tmemd log:\n%s", logBuf.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ready(sock) {
			return sock
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("xen-tmemd did not come up with two tmem clients; log:\n%s", logBuf.String())
	return ""
}

func ready(sock string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := control.Dial(ctx, sock)
	if err != nil {
		return false
	}
	defer c.Close()
	var st statusResult
	return c.Call(ctx, control.OpStatus, nil, &st) == nil && st.Clients >= 2
}

// tmemctl runs a command in this process against the daemon at sock.
func tmemctl(t *testing.T, sock string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, now: time.Now, sleep: sleepCtx}
	code := e.main(context.Background(), append([]string{"tmemctl", "--socket", sock}, args...))
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// TestDaemonEndToEnd runs the commands against a real xen-tmemd: names
// come from the daemon, and the effects show in the daemon's LIST.
func TestDaemonEndToEnd(t *testing.T) {
	needDaemon(t)
	sock := startDaemon(t)
	ok := func(args ...string) string {
		t.Helper()
		r := tmemctl(t, sock, args...)
		if r.code != 0 {
			t.Fatalf("%q: exit %d: %s", args, r.code, r.stderr)
		}
		return r.stdout
	}
	raw := ok("tmem-list", "-l", "-a")
	if !strings.HasPrefix(raw, "G=") || !strings.HasSuffix(raw, "T\n\n") {
		t.Errorf("tmem-list -l -a is not xl's output:\n%s", raw)
	}
	if tb := ok("tmem-list", "-a", "-o", "table"); !strings.Contains(tb, "web1") || !strings.Contains(tb, "swap1") {
		t.Errorf("no domain names in the table:\n%s", tb)
	}
	var doc listJSON
	if err := json.Unmarshal([]byte(ok("tmem-list", "-o", "json", "web1")), &doc); err != nil || len(doc.Domains) != 1 || doc.Domains[0].Name != "web1" {
		t.Errorf("tmem-list -o json web1: %+v %v", doc, err)
	}
	id := doc.Domains[0].ID

	ok("tmem-freeze", "web1")
	if l := ok("tmem-list", "web1"); !strings.Contains(l, ",fr:1,") {
		t.Errorf("web1 not frozen: %s", l)
	}
	ok("tmem-thaw", "web1")
	if l := ok("tmem-list", "web1"); !strings.Contains(l, ",fr:0,") {
		t.Errorf("web1 still frozen: %s", l)
	}
	ok("tmem-set", "web1", "-w", "5", "-p", "1")
	if l := ok("tmem-list", "dom"+itoa(id)); !strings.Contains(l, "ww:5,co:1,") {
		t.Errorf("weight and compression not set: %s", l)
	}
	if f := ok("tmem-freeable"); strings.TrimSpace(f) == "" || strings.Count(f, "\n") != 1 {
		t.Errorf("tmem-freeable printed %q", f)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"tmem-list", "nope"}, exitNoDomain},
		{[]string{"tmem-set", "web1", "-c", "1"}, exitUnsupported},
		{[]string{"tmem-shared-auth", "-a", "-u", "00112233-4455-6677-8899-aabbccddeeff", "-A", "1"}, exitUnsupported},
	} {
		if r := tmemctl(t, sock, tc.args...); r.code != tc.code || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%q: exit %d (%q), want %d", tc.args, r.code, r.stderr, tc.code)
		}
	}
	if r := ok("tmem-reserve", "--domain", "web3", "--timeout", "5s", "8"); !strings.HasPrefix(r, "reserved 8 MiB: ") {
		t.Errorf("tmem-reserve: %q", r)
	}
	file := filepath.Join(t.TempDir(), "web1.tmem")
	ok("tmem-save", "web1", file)
	if _, err := os.Stat(file); err != nil {
		t.Errorf("tmem-save wrote no file: %v", err)
	}
	if top := ok("tmem-top", "-b", "-n", "2", "-d", "0.3"); strings.Count(top, "tmem-top  ") != 2 || !strings.Contains(top, "web1") || !strings.Contains(top, "interval 0.") {
		t.Errorf("tmem-top -b:\n%s", top)
	}
	if d := ok("_domains"); !strings.Contains(d, "web1\n") || !strings.Contains(d, "Domain-0\n") {
		t.Errorf("_domains: %q", d)
	}

	// A real process invoked as tmem-list through a symlink.
	link := filepath.Join(t.TempDir(), "tmem-list")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, link); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link, "--socket", sock, "-a")
	cmd.Env = append(os.Environ(), "TMEMCTL_TEST_MAIN=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "G=") {
		t.Errorf("tmem-list symlink: %v\n%s", err, out)
	}

	// Shell completion asks tmemctl (here: a wrapper around this binary)
	// for the domain names, with the --socket given on the line.
	bin := t.TempDir()
	wrapper := "#!/bin/sh\nTMEMCTL_TEST_MAIN=1 exec " + quoteWords([]string{self}) + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "tmemctl"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	got := completeBash(t, bin, "tmemctl", "--socket", sock, "tmem-freeze", "w")
	if strings.Join(got, " ") != "web1" {
		t.Errorf("bash completion of a domain: %q", got)
	}
}

func itoa(id uint16) string { return u(uint64(id)) }
