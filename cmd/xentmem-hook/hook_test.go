package main

import (
	"bytes"
	"context"
	"encoding/json"
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

// call is one request the fake daemon received: the op and its arguments
// as JSON (what the real daemon would decode).
type call struct {
	Op   string
	Args string
}

// fakeDaemon is xen-tmemd's control API on a temporary unix socket, served
// by the real control.Server; answer decides each reply.
type fakeDaemon struct {
	socket string
	answer func(op string, args any, n int) (any, error) // n counts calls of op

	mu    sync.Mutex // guards calls, count
	calls []call
	count map[string]int
}

func startFakeDaemon(t *testing.T, answer func(op string, args any, n int) (any, error)) *fakeDaemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "hk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	fd := &fakeDaemon{socket: filepath.Join(dir, "control.sock"), answer: answer, count: map[string]int{}}
	ln, err := control.Listen(fd.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &control.Server{Handle: fd.handle, Log: zaptest.NewLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return fd
}

func (fd *fakeDaemon) handle(_ context.Context, op string, args any) (any, error) {
	b, _ := json.Marshal(args)
	fd.mu.Lock()
	fd.calls = append(fd.calls, call{op, string(b)})
	fd.count[op]++
	n := fd.count[op]
	fd.mu.Unlock()
	if fd.answer != nil {
		return fd.answer(op, args, n)
	}
	return map[string]any{"done": true}, nil
}

func (fd *fakeDaemon) got() []call {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	return append([]call(nil), fd.calls...)
}

const web1Attach0 = `{"domain":"web1","disk":"xvda","base":"/var/lib/xen/images/golden.img","cow_file":"/var/lib/xen/cow/web1.dscow","format":"dscow","nbd_device":"/dev/nbd0"}`
const web1Attach1 = `{"domain":"web1","disk":"xvdb","base":"","cow_file":"/var/lib/xen/cow/web1-data.qcow2","format":"qcow2","nbd_device":"auto"}`

func TestHook(t *testing.T) {
	web1, err := os.ReadFile("testdata/web1.xml")
	if err != nil {
		t.Fatal(err)
	}
	plain := `<domain type='xen'><name>db</name><memory unit='MiB'>512</memory></domain>`
	started := strings.Replace(string(web1), "<tmem:cowd disk=\"xvdb\"", "<tmem:unused disk=\"xvdb\"", 1)
	fail := func(code, msg string) error { return &control.Error{Code: code, Message: msg} }
	tests := []struct {
		name      string
		args      []string
		xml       string
		noDaemon  bool
		answer    func(op string, args any, n int) (any, error)
		wantCode  int
		wantCalls []call
		wantErr   string // in stderr; "" = stderr empty
	}{
		{name: "prepare reserves and attaches", args: []string{"web1", "prepare", "begin", "-"}, xml: string(web1),
			wantCalls: []call{
				{"reserve", `{"mib":1280,"domain":"web1","timeout_ms":30000}`},
				{"cowd-attach", web1Attach0},
				{"cowd-attach", web1Attach1},
			}},
		{name: "prepare without cowd disks", args: []string{"db", "prepare", "begin", "-"}, xml: plain,
			wantCalls: []call{{"reserve", `{"mib":512,"domain":"db","timeout_ms":30000}`}}},
		{name: "reservation times out", args: []string{"web1", "prepare", "begin", "-"}, xml: string(web1),
			answer: func(op string, _ any, _ int) (any, error) {
				return nil, fail(control.CodeTimeout, "reservation of 1280 MiB for web1: 300 MiB freed")
			},
			wantCode:  1,
			wantCalls: []call{{"reserve", `{"mib":1280,"domain":"web1","timeout_ms":30000}`}},
			wantErr:   "xentmem-hook: web1: could not free 1280 MiB for the domain within 30s: reservation of 1280 MiB for web1: 300 MiB freed"},
		{name: "no tmem is a warning", args: []string{"db", "prepare", "begin", "-"}, xml: plain,
			answer: func(string, any, int) (any, error) {
				return nil, fail(control.CodeFailed, "100 MiB free, 512 MiB needed, and tmem holds nothing to flush")
			},
			wantCalls: []call{{"reserve", `{"mib":512,"domain":"db","timeout_ms":30000}`}},
			wantErr:   "xentmem-hook: warning: db: no tmem reservation of 512 MiB (100 MiB free"},
		{name: "failed attach undoes the others", args: []string{"web1", "prepare", "begin", "-"}, xml: string(web1),
			answer: func(op string, _ any, n int) (any, error) {
				if op == "cowd-attach" && n == 2 {
					return nil, fail(control.CodeFailed, "cowd exited with status 1: plugin \"qcow2\" is not supported")
				}
				return map[string]any{}, nil
			},
			wantCode: 1,
			wantCalls: []call{
				{"reserve", `{"mib":1280,"domain":"web1","timeout_ms":30000}`},
				{"cowd-attach", web1Attach0},
				{"cowd-attach", web1Attach1},
				{"cowd-detach", `{"domain":"web1","disk":"xvda"}`},
			},
			wantErr: `xentmem-hook: web1: cowd disk xvdb: failed: cowd exited with status 1: plugin "qcow2" is not supported`},
		{name: "no daemon, no cowd disks", args: []string{"db", "prepare", "begin", "-"}, xml: plain, noDaemon: true,
			wantErr: "xentmem-hook: warning: db: xen-tmemd is not running"},
		{name: "no daemon, cowd disks", args: []string{"web1", "prepare", "begin", "-"}, xml: string(web1), noDaemon: true,
			wantCode: 1, wantErr: "xentmem-hook: web1: the domain needs cowd disks (xvda, xvdb) but xen-tmemd is not running"},
		{name: "bad cowd metadata stops the start", args: []string{"vm", "prepare", "begin", "-"},
			xml:      doc(`<t:cowd disk="xvda" cow="relative.dscow"/>`, ""),
			wantCode: 1, wantErr: `xentmem-hook: vm: bad cowd disk metadata: <cowd disk="xvda">: cow "relative.dscow": want an absolute path`},
		{name: "bad settings are a warning", args: []string{"vm", "prepare", "begin", "-"}, xml: doc(`<t:weight>x</t:weight>`, ""),
			wantCalls: []call{{"reserve", `{"mib":2,"domain":"vm","timeout_ms":30000}`}},
			wantErr:   "xentmem-hook: warning: vm: ignoring the tmem settings: bad tmem metadata: <weight>x</weight>: invalid syntax"},
		{name: "started sets weight and compress by id", args: []string{"web1", "started", "begin", "-"}, xml: started,
			wantCalls: []call{{"set", `{"domain":"7","weight":20,"compress":true}`}}},
		{name: "started retries until the daemon sees the domain", args: []string{"web1", "started", "begin", "-"}, xml: started,
			answer: func(op string, _ any, n int) (any, error) {
				if n < 3 {
					return nil, fail(control.CodeNoDomain, `no domain "7"`)
				}
				return nil, nil
			},
			wantCalls: []call{
				{"set", `{"domain":"7","weight":20,"compress":true}`},
				{"set", `{"domain":"7","weight":20,"compress":true}`},
				{"set", `{"domain":"7","weight":20,"compress":true}`},
			}},
		{name: "started never fails", args: []string{"web1", "started", "begin", "-"}, xml: started,
			answer: func(string, any, int) (any, error) {
				return nil, fail(control.CodeUnavailable, "tmem is not available on Xen 4.17.0")
			},
			wantCalls: []call{{"set", `{"domain":"7","weight":20,"compress":true}`}},
			wantErr:   "xentmem-hook: warning: web1: tmem settings not applied: unavailable: tmem is not available on Xen 4.17.0"},
		{name: "started without settings calls nothing", args: []string{"db", "started", "begin", "-"}, xml: plain},
		{name: "started without daemon", args: []string{"web1", "started", "begin", "-"}, xml: started, noDaemon: true,
			wantErr: "xentmem-hook: warning: web1: tmem settings not applied: xen-tmemd is not running"},
		{name: "release detaches", args: []string{"web1", "release", "end", "-"}, xml: string(web1),
			wantCalls: []call{
				{"cowd-detach", `{"domain":"web1","disk":"xvda"}`},
				{"cowd-detach", `{"domain":"web1","disk":"xvdb"}`},
			}},
		{name: "release without daemon", args: []string{"web1", "release", "end", "-"}, xml: string(web1), noDaemon: true,
			wantCode: 1, wantErr: "xentmem-hook: web1: cowd disks xvda, xvdb not detached: xen-tmemd is not running"},
		{name: "release without cowd disks", args: []string{"db", "release", "end", "-"}, xml: plain, noDaemon: true},
		{name: "migrate leaves the XML alone", args: []string{"web1", "migrate", "begin", "-"}, xml: string(web1)},
		{name: "stopped", args: []string{"web1", "stopped", "end", "-"}, xml: string(web1)},
		{name: "usage", args: []string{"web1"}, wantCode: 2, wantErr: "usage: xentmem-hook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultHookConfig()
			cfg.CallTimeout = 5 * time.Second
			var fd *fakeDaemon
			if tt.noDaemon {
				cfg.Socket = filepath.Join(t.TempDir(), "none.sock")
			} else {
				fd = startFakeDaemon(t, tt.answer)
				cfg.Socket = fd.socket
			}
			var stderr bytes.Buffer
			h := &hook{cfg: cfg, stderr: &stderr}
			code := h.run(context.Background(), tt.args, strings.NewReader(tt.xml))
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.wantCode, stderr.String())
			}
			if tt.wantErr == "" && stderr.Len() != 0 {
				t.Errorf("unexpected stderr:\n%s", stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("stderr:\n%s\nwant it to contain:\n%s", stderr.String(), tt.wantErr)
			}
			if fd != nil {
				if diff := cmp.Diff(tt.wantCalls, fd.got()); diff != "" {
					t.Errorf("daemon calls (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestHookConfig(t *testing.T) {
	cfg, err := parseHookConfig([]byte(`
[daemon]
socket = "/run/x/control.sock"
interval = "1s"
[policy]
reserve_timeout = "45s"
low_percent = 5.0
[sim]
memory_mib = 4096
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Socket != "/run/x/control.sock" || cfg.ReserveTimeout != 45*time.Second || cfg.Namespace != defaultNamespace {
		t.Errorf("config = %+v", cfg)
	}
	if _, err := parseHookConfig([]byte("[policy]\nreserve_timeout = \"soon\"\n")); err == nil {
		t.Error("bad reserve_timeout accepted")
	}
	if cfg, err := loadHookConfig(filepath.Join(t.TempDir(), "missing.toml")); err != nil || cfg != defaultHookConfig() {
		t.Errorf("missing file: %+v, %v", cfg, err)
	}
}

func TestRunFlags(t *testing.T) {
	fd := startFakeDaemon(t, nil)
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"--config", filepath.Join(t.TempDir(), "none.toml"), "--socket", fd.socket,
		"db", "prepare", "begin", "-"}, strings.NewReader(`<domain><name>db</name><memory unit="MiB">64</memory></domain>`), &stderr)
	if code != 0 || stderr.Len() != 0 {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
	if got := fd.got(); len(got) != 1 || got[0].Op != "reserve" {
		t.Errorf("calls = %+v", got)
	}
}
