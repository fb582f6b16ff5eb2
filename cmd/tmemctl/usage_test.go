package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/internal/control"
	"github.com/xentmem/xentmem/xenctl"
)

// usageScript is every command-line mistake worth a message: each must be
// one line on stderr and exit 2, before anything is asked of Xen.
var usageScript = [][]string{
	{},
	{"nope"},
	{"--bogus", "tmem-list"},
	{"help", "nope"},
	{"tmem-list"},
	{"tmem-list", "-x", "-a"},
	{"tmem-list", "1", "2"},
	{"tmem-list", "-a", "-o", "yaml"},
	{"tmem-freeze"},
	{"tmem-thaw", "1", "extra"},
	{"tmem-destroy"},
	{"tmem-set", "1"},
	{"tmem-set", "1", "-w", "heavy"},
	{"tmem-set", "1", "-w", "-3"},
	{"tmem-set", "1", "-w", "4294967296"},
	{"tmem-set", "1", "-c", "0x10"},
	{"tmem-set", "1", "-p", "2"},
	{"tmem-set", "-w", "1"},
	{"tmem-shared-auth", "1", "-u", "00112233-4455-6677-8899-aabbccddeeff"},
	{"tmem-shared-auth", "1", "-A", "1"},
	{"tmem-shared-auth", "1", "-u", "00112233-4455-6677-8899-aabbccddeeff", "-A", "yes"},
	{"tmem-shared-auth", "1", "-u", "0011223344556677-8899-aabbccddeeff", "-A", "1"},
	{"tmem-shared-auth", "1", "-u", "00112233-4455-6677-8899-aabbccddeefg", "-A", "1"},
	{"tmem-freeable", "extra"},
	{"tmem-freeable", "-o", "table"},
	{"tmem-flush"},
	{"tmem-flush", "-a", "-p", "1", "--mib", "1"},
	{"tmem-flush", "-a", "-p", "many"},
	{"tmem-flush", "-a", "--mib", "4194304"},
	{"tmem-pool-create"},
	{"tmem-pool-create", "1"},
	{"tmem-pool-create", "1", "--ephemeral", "--persistent"},
	{"tmem-pool-create", "1", "--persistent", "--shared", "--uuid", "00112233-4455-6677-8899-aabbccddeeff"},
	{"tmem-pool-create", "1", "--ephemeral", "--shared"},
	{"tmem-pool-create", "1", "--ephemeral", "--uuid", "00112233-4455-6677-8899-aabbccddeeff"},
	{"tmem-pool-create", "1", "--ephemeral", "--shared", "--uuid", "zz"},
	{"tmem-save", "1"},
	{"tmem-restore", "1", "a", "b"},
	{"tmem-reserve"},
	{"tmem-reserve", "0"},
	{"tmem-reserve", "lots"},
	{"tmem-reserve", "--timeout", "-1s", "10"},
	{"tmem-top", "-d", "0"},
	{"tmem-top", "-d", "fast"},
	{"tmem-top", "-s", "size"},
	{"tmem-top", "-n", "-1"},
	{"tmem-top", "-o", "json"},
	{"tmem-top"}, // not a terminal
	{"xen-info", "-o", "table"},
}

// TestUsageErrors pins the messages and checks that no backend is opened.
func TestUsageErrors(t *testing.T) {
	var b strings.Builder
	for _, args := range usageScript {
		var out, errb strings.Builder
		opened := false
		e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
			open: func(context.Context, *env) (backend, error) {
				opened = true
				return nil, errors.New("no backend in this test")
			}}
		code := e.main(context.Background(), append([]string{"tmemctl"}, args...))
		if opened {
			t.Errorf("%q opened the backend", args)
		}
		if code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
		if len(args) > 0 && strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%q: want one line on stderr, got %q", args, errb.String())
		}
		writeStep(&b, args, result{code: code, stdout: out.String(), stderr: errb.String()}, "\x00")
	}
	golden(t, "usage.golden", b.String())
}

// TestHelp pins every command's --help: on stdout, exit 0, with an
// example.
func TestHelp(t *testing.T) {
	var b strings.Builder
	for _, c := range append([]command{{name: ""}}, commands()...) {
		args := []string{c.name, "--help"}
		if c.name == "" {
			args = []string{"--help"}
		}
		var out, errb strings.Builder
		e := &env{stdout: &out, stderr: &errb}
		code := e.main(context.Background(), append([]string{"tmemctl"}, args...))
		if code != 0 || errb.Len() != 0 {
			t.Errorf("%q: exit %d, stderr %q", args, code, errb.String())
		}
		if !strings.Contains(out.String(), "Example") {
			t.Errorf("%q: no example", args)
		}
		fmt.Fprintf(&b, "$ tmemctl %s\n%s\n", strings.Join(args, " "), out.String())
	}
	golden(t, "help.golden", b.String())
	// 'tmemctl help CMD' and '-h' are the same text.
	for _, args := range [][]string{{"help", "tmem-set"}, {"tmem-set", "-h"}} {
		var out, want strings.Builder
		(&env{stdout: &out, stderr: &out}).main(context.Background(), append([]string{"tmemctl"}, args...))
		(&env{stdout: &want, stderr: &want}).main(context.Background(), []string{"tmemctl", "tmem-set", "--help"})
		if out.String() != want.String() {
			t.Errorf("%q differs from tmem-set --help", args)
		}
	}
}

// TestArgv0 checks that a symlink named after a command acts as it.
func TestArgv0(t *testing.T) {
	s := newScenario(t, "4.12.4")
	want := s.run(t, modeDirect, "tmem-list", "-l", "-a")
	for _, argv0 := range []string{"tmem-list", "/usr/local/sbin/tmem-list", "./tmem-list"} {
		got := s.runArgv0(t, modeDirect, argv0, "-l", "-a")
		if got != want {
			t.Errorf("%s -l -a: %+v, want %+v", argv0, got, want)
		}
	}
	if got, want := s.runArgv0(t, modeDirect, "tmem-freeable"), s.run(t, modeDirect, "tmem-freeable"); got != want || got.code != 0 {
		t.Errorf("tmem-freeable: %+v, want %+v", got, want)
	}
	// Global options after the command name, and before it.
	for _, args := range [][]string{{"--direct", "tmem-freeable"}, {"tmem-freeable", "--direct"}} {
		if got := s.run(t, modeDirect, args...); got.code != 0 {
			t.Errorf("%q: %+v", args, got)
		}
	}
}

// TestExitCodes maps every error kind to its documented status.
func TestExitCodes(t *testing.T) {
	diag := xenctl.Diagnose(xenctl.HostPaths{SysHypervisor: t.TempDir(), ProcXen: t.TempDir()}, fmt.Errorf("%w: open", hypercall.ErrNoDevice))
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, exitOK},
		{"usage", usagef("x"), exitUsage},
		{"bad request", &control.Error{Code: control.CodeBadRequest}, exitUsage},
		{"no domain", &control.Error{Code: control.CodeNoDomain}, exitNoDomain},
		{"unsupported", &control.Error{Code: control.CodeUnsupported}, exitUnsupported},
		{"unavailable", &control.Error{Code: control.CodeUnavailable}, exitUnsupported},
		{"denied", &control.Error{Code: control.CodeDenied}, exitDenied},
		{"frozen", &control.Error{Code: control.CodeFrozen}, exitFail},
		{"timeout", &control.Error{Code: control.CodeTimeout}, exitFail},
		{"failed", &control.Error{Code: control.CodeFailed}, exitFail},
		{"unreachable", &reachError{Code: exitUnreachable}, exitUnreachable},
		{"not root", fmt.Errorf("%w: open", hypercall.ErrPermission), exitDenied},
		{"no xen", diag, exitUnreachable},
		{"no tmem", &xenctl.UnsupportedError{Op: "x"}, exitUnsupported},
		{"other", errors.New("x"), exitFail},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestBackendSelection covers the choices without Xen: no socket, a stale
// socket, an explicit socket nobody serves, --direct without privcmd.
func TestBackendSelection(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	noPrivcmd := filepath.Join(dir, "privcmd")
	for _, tc := range []struct {
		name     string
		args     []string
		defSock  string
		wantCode int
		wantMsg  string
	}{
		{"no socket, no Xen", []string{"tmem-freeable"}, filepath.Join(dir, "none.sock"), exitUnreachable, "no Xen here and xen-tmemd is not running (in simulated mode start it: make run"},
		{"stale socket, no Xen", []string{"tmem-freeable"}, stale, exitUnreachable, "xen-tmemd is not running"},
		{"explicit socket missing", []string{"--socket", filepath.Join(dir, "x.sock"), "tmem-freeable"}, "", exitUnreachable, "xen-tmemd is not running: no socket"},
		{"explicit socket stale", []string{"tmem-list", "-a", "--socket", stale}, "", exitUnreachable, "xen-tmemd is not running"},
		{"direct without privcmd", []string{"--direct", "tmem-freeable"}, "", exitUnreachable, "no usable Xen dom0 here"},
		{"reserve without daemon", []string{"tmem-reserve", "10"}, filepath.Join(dir, "none.sock"), exitUnreachable, "no Xen here"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb strings.Builder
			e := &env{stdout: &out, stderr: &errb, defaultSocket: tc.defSock, global: globalFlags{privcmd: noPrivcmd}}
			code := e.main(context.Background(), append([]string{"tmemctl"}, tc.args...))
			if code != tc.wantCode || !strings.Contains(errb.String(), tc.wantMsg) || strings.Count(errb.String(), "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errb.String(), tc.wantCode, tc.wantMsg)
			}
		})
	}
	if _, err := os.Stat(stale); err != nil {
		t.Fatal(err)
	}
}

// TestReserve covers tmem-reserve through the daemon backend (the direct
// one refuses it: TestBackendSelection).
func TestReserve(t *testing.T) {
	s := newScenario(t, "4.12.4")
	r := s.run(t, modePipe, "tmem-reserve", "--domain", "web3", "64")
	if r.code != 0 || r.stdout != "reserved 64 MiB: enough memory is free already (flushed 0 KiB)\n" {
		t.Errorf("%+v", r)
	}
	r = s.run(t, modePipe, "tmem-reserve", "-o", "json", "64")
	if r.code != 0 || !strings.Contains(r.stdout, `"done": true`) {
		t.Errorf("%+v", r)
	}
	r = s.run(t, modeDirect, "tmem-reserve", "64")
	if r.code != exitUnreachable || !strings.Contains(r.stderr, "reservations are made by xen-tmemd") {
		t.Errorf("direct: %+v", r)
	}
}
