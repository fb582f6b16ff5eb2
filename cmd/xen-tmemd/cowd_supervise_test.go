package main

import (
	"context"
	"errors"
	"fmt"
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

	"go.uber.org/zap/zaptest"

	"github.com/xentmem/xentmem/internal/control"
)

// cowdTestBins builds cmd/cowd and cmd/cowd-img (without the race
// detector: they run as separate processes) into a temporary directory.
func cowdTestBins(t *testing.T) (cowdBin, imgBin string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs cowd; skipped with -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("the go tool is needed to build cowd: %v", err)
	}
	dir := t.TempDir()
	out, err := exec.Command(goBin, "build", "-o", dir+string(filepath.Separator),
		"github.com/xentmem/xentmem/cmd/cowd", "github.com/xentmem/xentmem/cmd/cowd-img").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "cowd"), filepath.Join(dir, "cowd-img")
}

// shortTempDir returns a temporary directory with a short path: unix
// socket paths are limited to 107 bytes and t.TempDir paths are long.
func cowdShortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// cowdFixture is a supervisor under test with a base image and an overlay.
type cowdFixture struct {
	t      *testing.T
	dir    string
	cfg    CowdConfig
	img    string // dscow overlay made by cowd-img
	base   string
	imgBin string

	mu     sync.Mutex // guards events
	events []control.Event
}

func newCowdFixture(t *testing.T) *cowdFixture {
	t.Helper()
	cowdBin, imgBin := cowdTestBins(t)
	dir := cowdShortTempDir(t)
	f := &cowdFixture{t: t, dir: dir, imgBin: imgBin,
		base: filepath.Join(dir, "base.img"), img: filepath.Join(dir, "web1.dscow")}
	if err := os.WriteFile(f.base, make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(imgBin, "create", f.img, f.base, "64").CombinedOutput(); err != nil {
		t.Fatalf("cowd-img create: %v\n%s", err, out)
	}
	// The binary sits in its own directory so tests can replace it.
	bin := filepath.Join(dir, "bin", "cowd")
	cowdCopyExec(t, cowdBin, bin)
	f.cfg = defaultCowdConfig()
	f.cfg.Binary = bin
	f.cfg.StateDir = filepath.Join(dir, "st")
	f.cfg.LogDir = filepath.Join(dir, "log")
	f.cfg.LinkDir = filepath.Join(dir, "dev")
	f.cfg.PollInterval = 10 * time.Millisecond
	f.cfg.BackoffMin = duration{20 * time.Millisecond}
	f.cfg.BackoffMax = duration{100 * time.Millisecond}
	f.cfg.StopTimeout = duration{5 * time.Second}
	f.cfg.MaxFailures = 3
	return f
}

// copyExecutable installs src at dst atomically (a running binary must not
// be rewritten in place).
func cowdCopyExec(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	cowdWriteExec(t, dst, b)
}

func cowdWriteExec(t *testing.T, dst string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

func (f *cowdFixture) publish(ev control.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, ev)
}

// sawEvent reports whether an event of kind contains text.
func (f *cowdFixture) sawEvent(kind, text string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ev := range f.events {
		if ev.Kind == kind && strings.Contains(ev.Message, text) {
			return true
		}
	}
	return false
}

// start runs a supervisor until the returned stop function is called (or
// the test ends); stop waits for Run to return.
func (f *cowdFixture) start() (*cowdSupervisor, func()) {
	f.t.Helper()
	s, err := newCowdSupervisor(f.cfg, zaptest.NewLogger(f.t), f.publish)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	f.t.Cleanup(stop)
	return s, stop
}

// attachArgs asks for web1/xvda on the fixture's overlay.
func (f *cowdFixture) attachArgs() *control.CowdAttachArgs {
	return &control.CowdAttachArgs{Domain: "web1", Disk: "xvda", CowFile: f.img, Base: f.base, Format: "dscow"}
}

func cowdAttachT(t *testing.T, s *cowdSupervisor, a *control.CowdAttachArgs) (*CowdInfo, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := s.handle(ctx, control.OpCowdAttach, a)
	if err != nil {
		return nil, err
	}
	return res.(*CowdInfo), nil
}

func cowdMustAttach(t *testing.T, s *cowdSupervisor, a *control.CowdAttachArgs) *CowdInfo {
	t.Helper()
	info, err := cowdAttachT(t, s, a)
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	return info
}

func cowdListOf(t *testing.T, s *cowdSupervisor) []CowdInfo {
	t.Helper()
	res, err := s.handle(context.Background(), control.OpCowdList, nil)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	return res.(*CowdListResult).Attachments
}

func cowdDetachT(t *testing.T, s *cowdSupervisor, domain, disk string) *CowdDetachResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := s.handle(ctx, control.OpCowdDetach, &control.CowdDetachArgs{Domain: domain, Disk: disk})
	if err != nil {
		t.Fatalf("detach: %v", err)
	}
	return res.(*CowdDetachResult)
}

// waitFor polls cond until it holds or 20 s pass.
func cowdWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// onlyAttachment returns the single attachment the supervisor lists.
func cowdOnly(t *testing.T, s *cowdSupervisor) CowdInfo {
	t.Helper()
	l := cowdListOf(t, s)
	if len(l) != 1 {
		t.Fatalf("list has %d attachments, want 1: %+v", len(l), l)
	}
	return l[0]
}

func cowdCmdline(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatalf("cmdline of %d: %v", pid, err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

func cowdGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err != nil || len(b) == 0
}

func cowdServes(sock string) bool {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func TestCowdSupervisorLifecycle(t *testing.T) {
	f := newCowdFixture(t)
	s, stop := f.start()

	// Attach: cowd runs with the documented command line and serves.
	info := cowdMustAttach(t, s, f.attachArgs())
	if info.State != cowdRunning || info.PID <= 0 || info.Name != "web1-xvda" {
		t.Fatalf("attach = %+v", info)
	}
	want := []string{f.cfg.Binary, "-n", "-r", "--listen", "unix:" + filepath.Join(f.cfg.StateDir, "web1-xvda.sock"),
		"-i", filepath.Join(f.cfg.StateDir, "web1-xvda.pid"), "web1-xvda", f.img}
	if got := cowdCmdline(t, info.PID); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("cowd command line\n got %q\nwant %q", got, want)
	}
	if !cowdServes(info.Socket) {
		t.Errorf("%s does not accept connections", info.Socket)
	}
	if _, err := os.Stat(filepath.Join(f.cfg.StateDir, "web1-xvda.json")); err != nil {
		t.Errorf("no record: %v", err)
	}
	if !f.sawEvent("cowd", "attached web1/xvda") {
		t.Errorf("no attach event in %+v", f.events)
	}

	// Attaching again with the same settings is idempotent; other
	// settings conflict.
	if again := cowdMustAttach(t, s, f.attachArgs()); again.PID != info.PID {
		t.Errorf("second attach started a new cowd: pid %d, was %d", again.PID, info.PID)
	}
	other := f.attachArgs()
	other.CowFile = filepath.Join(f.dir, "other.dscow")
	if _, err := cowdAttachT(t, s, other); err == nil || !strings.Contains(err.Error(), "already attached") {
		t.Errorf("conflicting attach: %v", err)
	}
	if l := cowdListOf(t, s); len(l) != 1 || l[0].PID != info.PID {
		t.Fatalf("list = %+v", l)
	}

	// kill -9: restarted with -r.
	if err := syscall.Kill(info.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var cur CowdInfo
	cowdWaitFor(t, "a restarted cowd", func() bool {
		cur = cowdOnly(t, s)
		return cur.State == cowdRunning && cur.PID != info.PID && cur.PID != 0
	})
	if cur.Restarts != 1 || !strings.Contains(cur.LastError, "signal killed") {
		t.Errorf("after kill -9: %+v", cur)
	}
	if got := cowdCmdline(t, cur.PID); got[2] != "-r" {
		t.Errorf("restart without -r: %q", got)
	}
	if !f.sawEvent("cowd", "restarting in") || !f.sawEvent("cowd", "serves again") {
		t.Errorf("restart events missing: %+v", f.events)
	}
	cowdWaitFor(t, "the restarted cowd to serve", func() bool { return cowdServes(cur.Socket) })

	// The supervisor restarts: the running cowd is re-adopted, not restarted.
	stop()
	if cowdGone(cur.PID) {
		t.Fatal("cowd stopped with the supervisor")
	}
	s2, _ := f.start()
	ad := cowdOnly(t, s2)
	if ad.PID != cur.PID || !ad.Adopted || ad.State != cowdRunning {
		t.Fatalf("after supervisor restart: %+v, want pid %d adopted", ad, cur.PID)
	}
	if !f.sawEvent("cowd", "re-adopted web1/xvda") {
		t.Errorf("no re-adopt event: %+v", f.events)
	}

	// Detach: SIGTERM, cowd exits cleanly, the state is gone.
	res := cowdDetachT(t, s2, "web1", "xvda")
	if !res.Detached || res.Attachment == nil || res.Attachment.Name != "web1-xvda" {
		t.Fatalf("detach = %+v", res)
	}
	cowdWaitFor(t, "cowd to exit", func() bool { return cowdGone(cur.PID) })
	if l := cowdListOf(t, s2); len(l) != 0 {
		t.Errorf("list after detach = %+v", l)
	}
	left, _ := filepath.Glob(filepath.Join(f.cfg.StateDir, "*"))
	if len(left) != 0 {
		t.Errorf("state dir after detach: %v", left)
	}
	if out, err := exec.Command(f.imgBin, "check", f.img).CombinedOutput(); err != nil {
		t.Errorf("cowd-img check after detach: %v\n%s", err, out)
	}
	if res := cowdDetachT(t, s2, "web1", "xvda"); res.Detached {
		t.Errorf("second detach = %+v, want detached=false", res)
	}
}

func TestCowdSupervisorGivesUp(t *testing.T) {
	f := newCowdFixture(t)
	good, err := os.ReadFile(f.cfg.Binary)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := f.start()
	info := cowdMustAttach(t, s, f.attachArgs())

	// From now on cowd fails at once.
	cowdWriteExec(t, f.cfg.Binary, []byte("#!/bin/sh\necho 'cowd: simulated failure' >&2\nexit 3\n"))
	if err := syscall.Kill(info.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var cur CowdInfo
	cowdWaitFor(t, "the supervisor to give up", func() bool {
		cur = cowdOnly(t, s)
		return cur.State == cowdFailed
	})
	if cur.Failures != f.cfg.MaxFailures || cur.PID != 0 ||
		!strings.Contains(cur.LastError, "exited with status 3") || !strings.Contains(cur.LastError, "simulated failure") {
		t.Errorf("failed attachment = %+v", cur)
	}
	if !f.sawEvent("error", "failed 3 times in a row") {
		t.Errorf("no error event: %+v", f.events)
	}

	// Once the cause is fixed, attaching again retries.
	cowdWriteExec(t, f.cfg.Binary, good)
	again := cowdMustAttach(t, s, f.attachArgs())
	if again.State != cowdRunning || again.Failures != 0 || again.PID == 0 {
		t.Errorf("retry = %+v", again)
	}
	cowdDetachT(t, s, "web1", "xvda")
}

func TestCowdSupervisorAttachErrors(t *testing.T) {
	f := newCowdFixture(t)
	s, _ := f.start()
	tests := []struct {
		name string
		args func() *control.CowdAttachArgs
		code string
		text string
	}{
		{name: "relative cow file", code: control.CodeBadRequest, text: "absolute",
			args: func() *control.CowdAttachArgs { a := f.attachArgs(); a.CowFile = "web1.dscow"; return a }},
		{name: "missing image without base", code: control.CodeBadRequest, text: "give base",
			args: func() *control.CowdAttachArgs {
				a := f.attachArgs()
				a.CowFile, a.Base = filepath.Join(f.dir, "none.dscow"), ""
				return a
			}},
		{name: "other base", code: control.CodeFailed, text: "is an overlay of",
			args: func() *control.CowdAttachArgs { a := f.attachArgs(); a.Base = "/etc/hostname"; return a }},
		{name: "bad nbd device", code: control.CodeBadRequest, text: "nbd_device",
			args: func() *control.CowdAttachArgs { a := f.attachArgs(); a.NBDDevice = "/dev/sda"; return a }},
		{name: "cowd refuses the image", code: control.CodeFailed, text: "base image changed",
			args: func() *control.CowdAttachArgs {
				// An overlay whose base has changed since create.
				base2 := filepath.Join(f.dir, "base2.img")
				img2 := filepath.Join(f.dir, "web2.dscow")
				os.WriteFile(base2, make([]byte, 1<<20), 0o644)
				if out, err := exec.Command(f.imgBin, "create", img2, base2).CombinedOutput(); err != nil {
					t.Fatalf("cowd-img create: %v\n%s", err, out)
				}
				os.WriteFile(base2, make([]byte, 2<<20), 0o644)
				return &control.CowdAttachArgs{Domain: "web2", Disk: "xvda", CowFile: img2, Format: "dscow"}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cowdAttachT(t, s, tt.args())
			var ce *control.Error
			if !errors.As(err, &ce) || ce.Code != tt.code || !strings.Contains(ce.Message, tt.text) {
				t.Fatalf("attach error = %v, want %s containing %q", err, tt.code, tt.text)
			}
			if l := cowdListOf(t, s); len(l) != 0 {
				t.Errorf("a failed attach left %+v", l)
			}
			if recs, _ := filepath.Glob(filepath.Join(f.cfg.StateDir, "*.json")); len(recs) != 0 {
				t.Errorf("a failed attach left records %v", recs)
			}
		})
	}

	// A missing overlay with a base is created, then served.
	a := f.attachArgs()
	a.Domain, a.CowFile = "web3", filepath.Join(f.dir, "web3.dscow")
	info := cowdMustAttach(t, s, a)
	if info.State != cowdRunning {
		t.Errorf("attach with create = %+v", info)
	}
	// The same CoW file cannot back a second disk.
	b := *a
	b.Disk = "xvdb"
	if _, err := cowdAttachT(t, s, &b); err == nil || !strings.Contains(err.Error(), "only one disk") {
		t.Errorf("second user of a CoW file: %v", err)
	}
	cowdDetachT(t, s, "web3", "xvda")
}

// TestCowdSupervisorAdoptsByCmdline re-adopts a cowd that is not its child
// (as after a real daemon restart) through a fake /proc, and restarts it
// when the process behind the pid is gone or is something else.
func TestCowdSupervisorAdoptsByCmdline(t *testing.T) {
	f := newCowdFixture(t)
	proc := filepath.Join(f.dir, "proc")
	f.cfg.ProcRoot = proc
	spec := cowdSpec{Domain: "web1", Disk: "xvda", Name: "web1-xvda", Format: "dscow", CowFile: f.img, Base: f.base}
	a := newCowdAttachment(cowdKey{"web1", "xvda"}, spec, f.cfg)
	a.binary = "/usr/sbin/cowd"
	s0, err := newCowdSupervisor(f.cfg, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s0.writeRecord(a); err != nil {
		t.Fatal(err)
	}
	// A pid no process has (pid_max is at most 2^22), so wait4 says ECHILD
	// and the fake /proc decides.
	const pid = 1<<22 + 7
	os.WriteFile(a.pidPath, []byte(strconv.Itoa(pid)+"\n"), 0o644)
	cmd := filepath.Join(proc, strconv.Itoa(pid), "cmdline")
	os.MkdirAll(filepath.Dir(cmd), 0o755)
	writeCmdline := func(argv ...string) {
		if err := os.WriteFile(cmd, []byte(strings.Join(argv, "\x00")+"\x00"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeCmdline(append([]string{"/usr/sbin/cowd"}, a.args...)...)

	s, _ := f.start()
	ad := cowdOnly(t, s)
	if !ad.Adopted || ad.PID != pid || ad.State != cowdRunning {
		t.Fatalf("adopted = %+v", ad)
	}
	// The pid now belongs to another program: cowd is gone, restart it.
	writeCmdline("/bin/sleep", "100")
	var cur CowdInfo
	cowdWaitFor(t, "a restart of the vanished cowd", func() bool {
		cur = cowdOnly(t, s)
		return cur.State == cowdRunning && cur.PID != pid && cur.PID != 0
	})
	if cur.Adopted || !strings.Contains(cur.LastError, "adopted process") {
		t.Errorf("after restart: %+v", cur)
	}
	cowdDetachT(t, s, "web1", "xvda")
}

func TestCowdSupervisorAdoptMismatch(t *testing.T) {
	tests := []struct {
		name string
		argv func(args []string) []string
		want bool
	}{
		{name: "same", argv: func(a []string) []string { return append([]string{"/usr/sbin/cowd"}, a...) }, want: true},
		{name: "moved binary", argv: func(a []string) []string { return append([]string{"/opt/x/cowd"}, a...) }, want: true},
		{name: "other program", argv: func(a []string) []string { return append([]string{"/bin/qemu-nbd"}, a...) }},
		{name: "other args", argv: func(a []string) []string { return []string{"/usr/sbin/cowd", "-n", "other", "/x"} }},
		{name: "zombie", argv: func([]string) []string { return nil }},
	}
	dir := t.TempDir()
	s := &cowdSupervisor{cfg: CowdConfig{ProcRoot: dir}}
	args := cowdArgs(cowdSpec{Name: "web1-xvda", CowFile: "/v/web1.dscow", Format: "dscow"}, "/run/x.sock", "/run/x.pid")
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strconv.Itoa(100+i), "cmdline")
			os.MkdirAll(filepath.Dir(p), 0o755)
			var b []byte
			if argv := tt.argv(args); argv != nil {
				b = []byte(strings.Join(argv, "\x00") + "\x00")
			}
			os.WriteFile(p, b, 0o644)
			if got := s.cmdlineMatches(100+i, "/usr/sbin/cowd", args); got != tt.want {
				t.Errorf("cmdlineMatches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCowdSupervisorWrap(t *testing.T) {
	next := func(context.Context, string, any) (any, error) { return "next", nil }
	var s *cowdSupervisor
	h := s.wrap(next)
	if _, err := h(context.Background(), control.OpCowdList, nil); err == nil ||
		err.(*control.Error).Code != control.CodeUnavailable {
		t.Errorf("disabled supervisor: %v", err)
	}
	if res, err := h(context.Background(), control.OpStatus, nil); err != nil || res != "next" {
		t.Errorf("status through wrap = %v, %v", res, err)
	}
}
