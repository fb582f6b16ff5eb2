package libvirttest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// InstallHint is the command that installs what [Start] needs on Debian.
const InstallHint = "apt-get install -y --no-install-recommends libvirt-daemon libvirt-clients"

// TestURI is the URI of the shared test driver instance inside a daemon.
const TestURI = "test:///default"

const (
	// readyTimeout bounds the wait for a new daemon to answer ConnectOpen.
	readyTimeout = 15 * time.Second
	// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
	stopGrace = 10 * time.Second
	// callTimeout bounds the helper's own libvirt calls (readiness, cleanup).
	callTimeout = 5 * time.Second
)

// Daemon is a private libvirtd started by [Start]. Its methods must be called
// from the test goroutine because they call t.Fatal on failure.
type Daemon struct {
	t   testing.TB
	bin string
	dir string

	mu sync.Mutex // guards the fields below
	// cmd is the running daemon, nil when it is not running.
	cmd *exec.Cmd
	// exited is closed when cmd has been reaped.
	exited chan struct{}
	// paused is true between Pause and Resume.
	paused bool
}

// Start launches a private libvirtd and waits until it serves the test
// driver. The daemon is stopped and its directory removed when the test ends.
// Start skips the test when libvirtd is missing, or fails it when CI=true.
func Start(t testing.TB) *Daemon {
	t.Helper()
	bin, err := findLibvirtd()
	if err != nil {
		msg := fmt.Sprintf("libvirtd not found (%v); install it with: %s", err, InstallHint)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// A short directory: the socket path must fit in 108 bytes, and
	// t.TempDir() grows with the test name.
	dir, err := os.MkdirTemp("", "lvd")
	if err != nil {
		t.Fatalf("libvirttest: %v", err)
	}
	d := &Daemon{t: t, bin: bin, dir: dir}
	t.Cleanup(d.cleanup)
	if err := d.writeConfig(); err != nil {
		t.Fatalf("libvirttest: %v", err)
	}
	d.launch()
	return d
}

// findLibvirtd returns $LIBVIRTD, libvirtd from $PATH or /usr/sbin/libvirtd.
func findLibvirtd() (string, error) {
	if p := os.Getenv("LIBVIRTD"); p != "" {
		return exec.LookPath(p)
	}
	if p, err := exec.LookPath("libvirtd"); err == nil {
		return p, nil
	}
	return exec.LookPath("/usr/sbin/libvirtd")
}

// Socket returns the path of the daemon's read-write socket.
func (d *Daemon) Socket() string { return filepath.Join(d.dir, "libvirt-sock") }

// Dir returns the daemon's private directory (config, sockets, logs).
func (d *Daemon) Dir() string { return d.dir }

// PID returns the daemon's process id, or 0 when it is not running.
func (d *Daemon) PID() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// Running reports whether the daemon process is alive (it may be paused).
func (d *Daemon) Running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmd != nil
}

func (d *Daemon) writeConfig() error {
	if err := os.Mkdir(filepath.Join(d.dir, "drivers"), 0o755); err != nil {
		return err
	}
	conf := fmt.Sprintf(`listen_tls = 0
listen_tcp = 0
unix_sock_dir = %q
unix_sock_rw_perms = "0770"
auth_unix_rw = "none"
auth_unix_ro = "none"
max_client_requests = 64
log_outputs = "3:file:%s"
`, d.dir, filepath.Join(d.dir, "libvirtd.log"))
	return os.WriteFile(filepath.Join(d.dir, "libvirtd.conf"), []byte(conf), 0o644)
}

// launch starts the daemon and waits until it answers.
func (d *Daemon) launch() {
	d.t.Helper()
	// After SIGKILL the sockets stay behind; a stale one would make the
	// readiness check pass (or fail) for the wrong reason.
	for _, s := range []string{"libvirt-sock", "libvirt-sock-ro", "libvirt-admin-sock"} {
		_ = os.Remove(filepath.Join(d.dir, s))
	}
	out, err := os.OpenFile(filepath.Join(d.dir, "libvirtd.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		d.t.Fatalf("libvirttest: %v", err)
	}
	defer out.Close()

	cmd := exec.Command(d.bin, "--config", filepath.Join(d.dir, "libvirtd.conf"),
		"--pid-file", filepath.Join(d.dir, "libvirtd.pid"))
	cmd.Env = append(os.Environ(),
		// An empty module directory: only the built-in test driver loads.
		"LIBVIRT_DRIVER_DIR="+filepath.Join(d.dir, "drivers"),
		// Session-mode state of an unprivileged daemon stays private too.
		"XDG_RUNTIME_DIR="+filepath.Join(d.dir, "run"),
		"XDG_CONFIG_HOME="+filepath.Join(d.dir, "config"),
		"XDG_CACHE_HOME="+filepath.Join(d.dir, "cache"),
	)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("libvirttest: start %s: %v", d.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	d.mu.Lock()
	d.cmd, d.exited, d.paused = cmd, exited, false
	d.mu.Unlock()

	if err := d.waitReady(exited); err != nil {
		d.t.Fatalf("libvirttest: private libvirtd did not start: %v\n%s", err, d.logTail())
	}
}

// waitReady polls until a client can open the test driver.
func (d *Daemon) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("daemon exited")
		default:
		}
		l, err := dial(d.Socket(), TestURI)
		if err == nil {
			disconnect(l)
			return nil
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("timeout after %v: %v", readyTimeout, last)
}

// dial connects a go-libvirt client to sock and opens uri, all within
// callTimeout.
func dial(sock, uri string) (*libvirt.Libvirt, error) {
	l := libvirt.NewWithDialer(dialers.NewLocal(
		dialers.WithSocket(sock), dialers.WithLocalTimeout(callTimeout)))
	errc := make(chan error, 1)
	go func() {
		if err := l.ConnectToURI(libvirt.ConnectURI(uri)); err != nil {
			errc <- err
			return
		}
		// go-libvirt's ConnectToURI assigns l.disconnected after the
		// reader goroutine started; only a later socket write orders that
		// assignment before the reader's cleanup for the race detector.
		// One round trip closes the window.
		_, err := l.ConnectGetLibVersion()
		errc <- err
	}()
	select {
	case err := <-errc:
		if err != nil {
			return nil, err
		}
		return l, nil
	case <-time.After(callTimeout):
		// The goroutine ends when the daemon answers or goes away.
		return nil, fmt.Errorf("connect %s: timeout", uri)
	}
}

// disconnect closes l, giving up after callTimeout (a paused daemon never
// answers ConnectClose).
func disconnect(l *libvirt.Libvirt) {
	done := make(chan struct{})
	go func() {
		_ = l.Disconnect()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(callTimeout):
	}
}

// Connect returns a go-libvirt client connected to uri ([TestURI] when
// empty) on this daemon. It is disconnected when the test ends. Keep one open
// while a test drives test:///default: the driver discards its state when
// the last connection closes.
func (d *Daemon) Connect(t testing.TB, uri string) *libvirt.Libvirt {
	t.Helper()
	if uri == "" {
		uri = TestURI
	}
	l, err := dial(d.Socket(), uri)
	if err != nil {
		t.Fatalf("libvirttest: connect %s: %v", uri, err)
	}
	t.Cleanup(func() {
		d.Resume()
		disconnect(l)
	})
	return l
}

// signal sends sig to the running daemon; it reports false when none runs.
func (d *Daemon) signal(sig syscall.Signal) (exited <-chan struct{}, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return nil, false
	}
	if err := d.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		d.t.Errorf("libvirttest: signal %v to %d: %v", sig, d.cmd.Process.Pid, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		d.paused = true
	case syscall.SIGCONT:
		d.paused = false
	}
	return d.exited, true
}

// reaped forgets the process after it exited.
func (d *Daemon) reaped() {
	d.mu.Lock()
	d.cmd, d.exited, d.paused = nil, nil, false
	d.mu.Unlock()
}

// Stop terminates the daemon with SIGTERM (SIGKILL after a grace period)
// and waits for it. A clean exit removes the sockets. Stop on a stopped
// daemon does nothing.
func (d *Daemon) Stop() {
	d.Resume() // a stopped process would not act on SIGTERM
	exited, ok := d.signal(syscall.SIGTERM)
	if !ok {
		return
	}
	select {
	case <-exited:
	case <-time.After(stopGrace):
		d.t.Logf("libvirttest: libvirtd ignored SIGTERM for %v, killing it", stopGrace)
		d.signal(syscall.SIGKILL)
		<-exited
	}
	d.reaped()
}

// Kill sends SIGKILL and waits for the daemon to die. Its sockets stay
// behind, as after a crash.
func (d *Daemon) Kill() {
	exited, ok := d.signal(syscall.SIGKILL)
	if !ok {
		return
	}
	<-exited
	d.reaped()
}

// Restart stops the daemon if it runs and starts a new one on the same
// socket path. The test driver state starts over.
func (d *Daemon) Restart() {
	d.t.Helper()
	d.Stop()
	d.launch()
}

// Pause stops the daemon with SIGSTOP. Its listening socket keeps accepting
// connections, but nothing answers: the way a hung libvirtd looks.
func (d *Daemon) Pause() { d.signal(syscall.SIGSTOP) }

// Resume continues a paused daemon with SIGCONT. It does nothing otherwise.
func (d *Daemon) Resume() {
	d.mu.Lock()
	paused := d.paused
	d.mu.Unlock()
	if paused {
		d.signal(syscall.SIGCONT)
	}
}

// Log returns the daemon's log file (errors and warnings) and its output.
func (d *Daemon) Log() string {
	var b strings.Builder
	for _, f := range []string{"libvirtd.log", "libvirtd.out"} {
		data, err := os.ReadFile(filepath.Join(d.dir, f))
		if err == nil && len(data) > 0 {
			fmt.Fprintf(&b, "== %s ==\n%s", f, data)
		}
	}
	return b.String()
}

func (d *Daemon) logTail() string {
	s := d.Log()
	const max = 4096
	if len(s) > max {
		s = "…" + s[len(s)-max:]
	}
	return s
}

func (d *Daemon) cleanup() {
	d.Stop()
	if d.t.Failed() {
		if tail := d.logTail(); tail != "" {
			d.t.Logf("libvirttest: daemon log (%s):\n%s", d.dir, tail)
		}
	}
	if err := os.RemoveAll(d.dir); err != nil {
		d.t.Errorf("libvirttest: %v", err)
	}
}
