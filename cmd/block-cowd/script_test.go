package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zaptest"

	"github.com/xentmem/xentmem/internal/control"
)

// fakeXenstore stands in for xenstored (which cannot run here, see
// docs/hotplug.md): an in-memory tree keyed by absolute path, with
// relative paths resolved against dom0's home like xenstore-read does.
type fakeXenstore struct {
	mu    sync.Mutex // guards nodes
	nodes map[string]string
	fail  map[string]error // writes that fail
}

var _ xenstore = (*fakeXenstore)(nil)

func abs(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return "/local/domain/0/" + p
}

func (x *fakeXenstore) Read(p string) (string, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	v, ok := x.nodes[abs(p)]
	if !ok {
		return "", fmt.Errorf("%w: %s", errNoNode, p)
	}
	return v, nil
}

func (x *fakeXenstore) Write(p, v string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.fail[abs(p)]; err != nil {
		return err
	}
	x.nodes[abs(p)] = v
	return nil
}

// backend is what libxl writes before it runs the script (xen-hooks.md §1.3).
func backend(params string) map[string]string {
	be := "/local/domain/0/backend/vbd/5/51712/"
	return map[string]string{
		be + "params": params, be + "script": "/etc/xen/scripts/block-cowd", be + "mode": "w", be + "type": "phy",
		be + "frontend-id": "5", be + "frontend": "/local/domain/5/device/vbd/51712", be + "dev": "xvda",
		be + "device-type": "disk", be + "online": "1", be + "state": "2",
		"/local/domain/5/name": "web1",
	}
}

type call struct{ Op, Args string }

// fakeDaemon is xen-tmemd's control API, served by control.Server on a
// temporary unix socket.
type fakeDaemon struct {
	socket string
	answer func(op string) (any, error)
	mu     sync.Mutex // guards calls
	calls  []call
}

func startFakeDaemon(t *testing.T, answer func(op string) (any, error)) *fakeDaemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "bc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	fd := &fakeDaemon{socket: filepath.Join(dir, "c.sock"), answer: answer}
	ln, err := control.Listen(fd.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &control.Server{Log: zaptest.NewLogger(t), Handle: func(_ context.Context, op string, args any) (any, error) {
		b, _ := json.Marshal(args)
		fd.mu.Lock()
		fd.calls = append(fd.calls, call{op, string(b)})
		fd.mu.Unlock()
		return fd.answer(op)
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return fd
}

func attached(op string) (any, error) {
	if op == control.OpCowdAttach {
		return map[string]any{"nbd_device": "/dev/nbd0", "pid": 4242, "state": "running"}, nil
	}
	return map[string]any{"detached": true}, nil
}

func statNBD(p string) (uint32, uint32, error) {
	if p == "/dev/nbd0" {
		return 43, 0, nil
	}
	if p == "/dev/nbd17" {
		return 43, 0x220, nil
	}
	return 0, 0, fmt.Errorf("stat %s: no such device", p)
}

const be = "backend/vbd/5/51712"
const abe = "/local/domain/0/" + be + "/"

func TestBlockCowd(t *testing.T) {
	attachXvda := `{"domain":"web1","disk":"xvda","base":"/srv/golden.img","cow_file":"/srv/web1.dscow","format":"dscow","nbd_device":"auto"}`
	tests := []struct {
		name      string
		command   string
		nodes     map[string]string
		answer    func(op string) (any, error)
		noDaemon  bool
		statDev   func(string) (uint32, uint32, error)
		wantCode  int
		wantCalls []call
		wantNodes map[string]string // nodes that must have these values
		absent    []string          // nodes that must not exist
		wantLog   string
	}{
		{name: "add dscow", command: "add", nodes: backend("dscow:/srv/web1.dscow:/srv/golden.img"),
			wantCalls: []call{{"cowd-attach", attachXvda}},
			wantNodes: map[string]string{abe + "physical-device": "2b:0", abe + "physical-device-path": "/dev/nbd0",
				abe + "hotplug-status": "connected", abe + "node": "/dev/nbd0", abe + "cowd-domain": "web1", abe + "cowd-disk": "xvda"},
			absent:  []string{abe + "hotplug-error"},
			wantLog: "web1/xvda: /srv/web1.dscow on /dev/nbd0 (cowd pid 4242)"},
		{name: "add qcow2, large minor, no name", command: "add",
			nodes: func() map[string]string {
				n := backend("qcow2:/srv/web1.qcow2")
				delete(n, "/local/domain/5/name")
				return n
			}(),
			answer: func(op string) (any, error) { return map[string]any{"nbd_device": "/dev/nbd17"}, nil },
			wantCalls: []call{{"cowd-attach",
				`{"domain":"dom5","disk":"xvda","base":"","cow_file":"/srv/web1.qcow2","format":"qcow2","nbd_device":"auto"}`}},
			wantNodes: map[string]string{abe + "physical-device": "2b:220", abe + "hotplug-status": "connected", abe + "cowd-domain": "dom5"}},
		{name: "bad params", command: "add", nodes: backend("vhd:/srv/x.vhd"), wantCode: 1,
			wantNodes: map[string]string{abe + "hotplug-status": "error",
				abe + "hotplug-error": `bad block-cowd target: format "vhd": want dscow or qcow2`},
			absent: []string{abe + "physical-device"}},
		{name: "daemon refuses", command: "add", nodes: backend("dscow:/srv/web1.dscow"), wantCode: 1,
			answer: func(string) (any, error) {
				return nil, &control.Error{Code: control.CodeFailed, Message: "all 16 NBD devices are in use"}
			},
			wantCalls: []call{{"cowd-attach", `{"domain":"web1","disk":"xvda","base":"","cow_file":"/srv/web1.dscow","format":"dscow","nbd_device":"auto"}`}},
			wantNodes: map[string]string{abe + "hotplug-status": "error",
				abe + "hotplug-error": "xen-tmemd: attach /srv/web1.dscow for web1/xvda: failed: all 16 NBD devices are in use"}},
		{name: "no daemon", command: "add", nodes: backend("dscow:/srv/web1.dscow"), noDaemon: true, wantCode: 1,
			wantNodes: map[string]string{abe + "hotplug-status": "error"}, wantLog: "xen-tmemd is not running"},
		{name: "no device node: attach undone", command: "add", nodes: backend("dscow:/srv/web1.dscow:/srv/golden.img"),
			statDev:   func(string) (uint32, uint32, error) { return 0, 0, errors.New("/dev/nbd0 is not a block device") },
			wantCode:  1,
			wantCalls: []call{{"cowd-attach", attachXvda}, {"cowd-detach", `{"domain":"web1","disk":"xvda"}`}},
			wantNodes: map[string]string{abe + "hotplug-status": "error", abe + "hotplug-error": "/dev/nbd0 is not a block device"}},
		{name: "remove", command: "remove",
			nodes:     map[string]string{abe + "cowd-domain": "web1", abe + "cowd-disk": "xvda", abe + "params": "dscow:/srv/web1.dscow"},
			wantCalls: []call{{"cowd-detach", `{"domain":"web1","disk":"xvda"}`}}},
		{name: "remove after a failed add", command: "remove", nodes: backend("dscow:/srv/web1.dscow")},
		{name: "remove without daemon", command: "remove", noDaemon: true, wantCode: 1,
			nodes: map[string]string{abe + "cowd-domain": "web1", abe + "cowd-disk": "xvda"}, wantLog: "xen-tmemd is not running"},
		{name: "unknown command", command: "online", nodes: backend(""), wantCode: 1, wantLog: `unknown command "online"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			xs := &fakeXenstore{nodes: tt.nodes}
			var stderr bytes.Buffer
			s := &script{xs: xs, timeout: 5 * time.Second, stderr: &stderr, statDev: statNBD}
			if tt.statDev != nil {
				s.statDev = tt.statDev
			}
			var fd *fakeDaemon
			if tt.noDaemon {
				s.socket = filepath.Join(t.TempDir(), "none.sock")
			} else {
				answer := tt.answer
				if answer == nil {
					answer = attached
				}
				fd = startFakeDaemon(t, answer)
				s.socket = fd.socket
			}
			code := s.run(context.Background(), tt.command, be)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; log:\n%s", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantLog) {
				t.Errorf("log:\n%s\nwant it to contain %q", stderr.String(), tt.wantLog)
			}
			for k, want := range tt.wantNodes {
				if got, ok := xs.nodes[k]; !ok || got != want {
					t.Errorf("%s = %q (present %v), want %q", k, got, ok, want)
				}
			}
			for _, k := range tt.absent {
				if v, ok := xs.nodes[k]; ok {
					t.Errorf("%s = %q, want no such node", k, v)
				}
			}
			if fd != nil {
				fd.mu.Lock()
				got := fd.calls
				fd.mu.Unlock()
				if diff := cmp.Diff(tt.wantCalls, got); diff != "" {
					t.Errorf("daemon calls (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestNoXenbusPath(t *testing.T) {
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"--socket", "/nonexistent", "add"}, func(string) string { return "" }, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "XENBUS_PATH is not set") {
		t.Errorf("exit %d, log %q", code, stderr.String())
	}
}

func TestParseParams(t *testing.T) {
	tests := []struct {
		in   string
		want target
		err  bool
	}{
		{in: "dscow:/srv/a.dscow:/srv/base.img", want: target{Format: "dscow", Cow: "/srv/a.dscow", Base: "/srv/base.img"}},
		{in: "dscow:/srv/a.dscow", want: target{Format: "dscow", Cow: "/srv/a.dscow"}},
		{in: " dscow:/srv//a.dscow:/srv/b:c.img\n", want: target{Format: "dscow", Cow: "/srv/a.dscow", Base: "/srv/b:c.img"}},
		{in: "qcow2:/srv/a:b.qcow2", want: target{Format: "qcow2", Cow: "/srv/a:b.qcow2"}},
		{in: "/srv/a.dscow", err: true},
		{in: "dscow:a.dscow", err: true},
		{in: "dscow:/a:rel/base", err: true},
		{in: "dscow:", err: true},
		{in: "raw:/srv/a.img", err: true},
		{in: "", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseParams(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("error = %v, want error %v", err, tt.err)
			}
			if err != nil {
				if !errors.Is(err, errParams) {
					t.Errorf("%v does not wrap errParams", err)
				}
				return
			}
			if got != tt.want {
				t.Errorf("parseParams = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func FuzzParseParams(f *testing.F) {
	for _, s := range []string{"dscow:/srv/a.dscow:/srv/base.img", "qcow2:/x", "dscow:/a", "dscow:", ":::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := parseParams(s)
		if err != nil {
			return
		}
		if !filepath.IsAbs(tg.Cow) || (tg.Base != "" && !filepath.IsAbs(tg.Base)) {
			t.Errorf("relative path accepted: %+v", tg)
		}
		// What parses, formatted back, parses to the same target.
		back := tg.Format + ":" + tg.Cow
		if tg.Base != "" {
			back += ":" + tg.Base
		}
		if strings.Contains(tg.Cow, ":") && tg.Format == "dscow" {
			t.Fatalf("dscow image path with ':' accepted: %q", tg.Cow)
		}
		tg2, err := parseParams(back)
		if err != nil || tg2 != tg {
			t.Errorf("round trip %q → %+v → %q → %+v, %v", s, tg, back, tg2, err)
		}
	})
}

// TestXenstoreCmd runs the real xenstore-read/xenstore-write client code
// against shell stand-ins that keep the nodes in files.
func TestXenstoreCmd(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	os.Mkdir(store, 0o755)
	script := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\nf=\""+store+"/$(echo \"$1\" | tr / _)\"\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script("xenstore-read", `[ -f "$f" ] || { echo "couldn't read path $1" >&2; exit 1; }
cat "$f"; echo
`)
	script("xenstore-write", `printf %s "$2" > "$f"
`)
	xs := &xenstoreCmd{Dir: dir, Timeout: 5 * time.Second}
	if _, err := xs.Read(be + "/params"); !errors.Is(err, errNoNode) {
		t.Errorf("read of a missing node: %v", err)
	}
	if err := xs.Write(be+"/hotplug-error", "cowd: it's broken; see log"); err != nil {
		t.Fatal(err)
	}
	if v, err := xs.Read(be + "/hotplug-error"); err != nil || v != "cowd: it's broken; see log" {
		t.Errorf("read back %q, %v", v, err)
	}
	bad := &xenstoreCmd{Dir: filepath.Join(dir, "nothing"), Timeout: time.Second}
	if _, err := bad.Read("x"); err == nil || errors.Is(err, errNoNode) {
		t.Errorf("missing tool: %v", err)
	}
}

func TestConfigSocket(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.toml")
	os.WriteFile(p, []byte("[daemon]\nsocket = \"/run/y.sock\"\n[policy]\nlow_percent = 3.0\n"), 0o644)
	if s, err := configSocket(p); err != nil || s != "/run/y.sock" {
		t.Errorf("configSocket = %q, %v", s, err)
	}
	if s, err := configSocket(filepath.Join(dir, "none")); err != nil || s != control.DefaultSocket {
		t.Errorf("missing file: %q, %v", s, err)
	}
}
