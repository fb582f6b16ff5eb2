package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/xentmem/xentmem/hypercall/xensim"
	"github.com/xentmem/xentmem/hypercall/xensim/workload"
	"github.com/xentmem/xentmem/internal/control"
	"github.com/xentmem/xentmem/xenctl"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestMain lets the test binary act as tmemctl (TMEMCTL_TEST_MAIN=1), for
// the tests that need a real process: tmux and the argv[0] symlinks.
func TestMain(m *testing.M) {
	if os.Getenv("TMEMCTL_TEST_MAIN") == "1" {
		main()
		return
	}
	code := m.Run()
	cleanupBuilds()
	os.Exit(code)
}

// stepClock is a deterministic clock: every call is step later.
type stepClock struct {
	mu   sync.Mutex // guards t
	t    time.Time
	step time.Duration
}

func newStepClock(step time.Duration) *stepClock {
	return &stepClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), step: step}
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// scenario is a simulated Xen of one release (80 MiB, so that tmem runs
// out of memory and evicts) with guests that used tmem:
// domains 1 and 2 run cleancache, 3 frontswap, 4 is idle (no tmem client).
// Everything is seeded: the same calls give the same LIST.
type scenario struct {
	version string
	sim     *xensim.Sim
	clock   *stepClock // the CLI's clock (list times)
	cc      []*workload.Cleancache
	fs      *workload.Frontswap
	tmp     string
}

func newScenario(t *testing.T, version string) *scenario {
	t.Helper()
	simClock := newStepClock(time.Microsecond)
	sim, err := xensim.New(&xensim.Config{Version: version, TotalPages: 80 * 256, Dom0MemoryKiB: 32 << 10, Dom0MaxMemoryKiB: 64 << 10, Clock: simClock.now})
	if err != nil {
		t.Fatal(err)
	}
	s := &scenario{version: version, sim: sim, clock: newStepClock(0), tmp: t.TempDir()}
	var ids []uint16
	for i, mem := range []uint64{8, 8, 8, 4} {
		cfg := xensim.DomainConfig{MemoryKiB: mem << 10}
		if i >= 2 {
			cfg.MaxMemoryKiB = 24 << 10 // room for persistent pages
		}
		id, err := sim.CreateDomain(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if !hasTmem(version) {
		return s
	}
	for i := range 2 {
		cc, err := workload.NewCleancache(sim, ids[i], &workload.CleancacheConfig{Files: 64, Pages: 96, CacheFrames: 256,
			Pattern: workload.Zipf(64, 96, 0.9, uint64(i+1)), TruncateEvery: 7000 * i, Seed: uint64(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		s.cc = append(s.cc, cc)
	}
	if s.fs, err = workload.NewFrontswap(sim, ids[2], &workload.FrontswapConfig{WorkingSet: 2048, RAMFrames: 512, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	s.work(t, 20000)
	return s
}

func hasTmem(version string) bool {
	v, err := xenctl.ParseVersion(version)
	return err == nil && xenctl.GenerationOf(v) != xenctl.GenNone
}

// work runs n page accesses of each cleancache guest and n/8 of the
// frontswap guest, interleaved.
func (s *scenario) work(t testing.TB, n int) {
	const chunk = 2000
	for done := 0; done < n; done += chunk {
		k := min(chunk, n-done)
		for _, cc := range s.cc {
			if err := cc.Run(k); err != nil {
				t.Fatal(err)
			}
		}
		if s.fs != nil {
			if err := s.fs.Run(k / 8); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// result is what one command did.
type result struct {
	code           int
	stdout, stderr string
}

// Backend modes of the tests.
const (
	modeDirect = "direct" // the direct backend on the simulator
	modePipe   = "daemon" // the daemon backend over net.Pipe, served by the direct handler
)

// run runs tmemctl with args against the scenario through the backend of
// mode, in this process.
func (s *scenario) run(t testing.TB, mode string, args ...string) result {
	t.Helper()
	return s.runArgv0(t, mode, "tmemctl", args...)
}

func (s *scenario) runArgv0(t testing.TB, mode, argv0 string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, now: s.clock.now,
		defaultSocket: filepath.Join(s.tmp, "no-daemon.sock"),
		sleep: func(ctx context.Context, d time.Duration) error {
			s.work(t, int(d.Seconds()*4000))
			s.clock.advance(d)
			return ctx.Err()
		},
		open: func(ctx context.Context, e *env) (backend, error) { return s.backend(t, mode) },
	}
	code := e.main(context.Background(), append([]string{argv0}, args...))
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func (s *scenario) backend(t testing.TB, mode string) (backend, error) {
	d, err := newDirect(s.sim, nil, "sim", s.clock.now)
	if err != nil {
		return nil, err
	}
	if mode == modeDirect {
		return d, nil
	}
	return newPipeBackend(d), nil
}

// pipeBackend is the daemon backend on one end of a net.Pipe whose other
// end a control.Server serves with the direct backend's handler (plus a
// stand-in for the daemon-only "reserve").
type pipeBackend struct {
	daemonBackend
	d    *directBackend
	done chan struct{}
}

func newPipeBackend(d *directBackend) *pipeBackend {
	c1, c2 := net.Pipe()
	srv := &control.Server{Handle: func(ctx context.Context, op string, args any) (any, error) {
		if op == control.OpReserve {
			return &reserveResult{Done: true, Reason: "enough memory is free already"}, nil
		}
		return d.handle(ctx, op, args)
	}}
	p := &pipeBackend{daemonBackend: daemonBackend{control.NewClient(c2)}, d: d, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		srv.ServeConn(context.Background(), c1)
	}()
	return p
}

func (p *pipeBackend) Close() error {
	err := p.daemonBackend.Close()
	<-p.done
	return errors.Join(err, p.d.Close())
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/tmemctl -update)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}
