package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tmuxSession is a private tmux server (its own socket) with one session.
type tmuxSession struct {
	t    *testing.T
	bin  string
	sock string
	name string
}

func (s *tmuxSession) cmd(args ...string) (string, error) {
	out, err := exec.Command(s.bin, append([]string{"-S", s.sock}, args...)...).CombinedOutput()
	return string(out), err
}

// capture returns the visible pane.
func (s *tmuxSession) capture() string {
	out, err := s.cmd("capture-pane", "-p", "-t", s.name)
	if err != nil {
		return ""
	}
	return out
}

// waitFor polls the pane until ok accepts it.
func (s *tmuxSession) waitFor(what string, ok func(string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var screen string
	for time.Now().Before(deadline) {
		if screen = s.capture(); ok(screen) {
			return screen
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("waiting for %s; the screen shows:\n%s", what, screen)
	return ""
}

// TestTopInTmux drives the full-screen tmem-top in a real terminal (tmux)
// against a real xen-tmemd: the header and the guests appear, 's' moves
// the sort marker, 'd' changes the delay, 'q' quits with status 0.
func TestTopInTmux(t *testing.T) {
	needDaemon(t)
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is required under CI=true (apt-get install tmux)")
		}
		t.Skip("tmux not installed")
	}
	sock := startDaemon(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	exitFile := filepath.Join(dir, "exit")
	s := &tmuxSession{t: t, bin: tmux, sock: filepath.Join(dir, "tmux.sock"), name: "top"}
	shell := fmt.Sprintf("TMEMCTL_TEST_MAIN=1 %q --socket %q tmem-top -d 0.3; echo EXIT=$? > %q; sleep 60",
		self, sock, exitFile)
	if out, err := s.cmd("new-session", "-d", "-s", s.name, "-x", "160", "-y", "40", shell); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	t.Cleanup(func() { s.cmd("kill-server") })

	screen := s.waitFor("the header and both guests", func(p string) bool {
		return strings.Contains(p, "tmem-top  ") && strings.Contains(p, "sort: pages") &&
			strings.Contains(p, "web1") && strings.Contains(p, "swap1") && strings.Contains(p, "interval 0.3s")
	})
	if !strings.Contains(screen, "TMEM_MiB*") || !strings.Contains(screen, "q quit") {
		t.Errorf("first screen:\n%s", screen)
	}
	s.cmd("send-keys", "-t", s.name, "s")
	s.waitFor("sort: hits", func(p string) bool {
		return strings.Contains(p, "sort: hits") && strings.Contains(p, "HITS/s*") && !strings.Contains(p, "TMEM_MiB*")
	})
	s.cmd("send-keys", "-t", s.name, "s")
	s.waitFor("sort: puts", func(p string) bool { return strings.Contains(p, "sort: puts") && strings.Contains(p, "PUTS/s*") })
	s.cmd("send-keys", "-t", s.name, "d")
	s.waitFor("the delay prompt", func(p string) bool { return strings.Contains(p, "delay in seconds") })
	s.cmd("send-keys", "-t", s.name, "0.5", "Enter")
	s.waitFor("the new delay", func(p string) bool {
		return strings.Contains(p, "d delay (0.5s)") && strings.Contains(p, "interval 0.5s")
	})
	s.cmd("send-keys", "-t", s.name, "q")
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(exitFile)
		if strings.TrimSpace(string(b)) == "EXIT=0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tmem-top did not quit with status 0 (exit file %q); screen:\n%s", b, s.capture())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The alternate screen is gone: the shell's screen is back.
	if p := s.capture(); strings.Contains(p, "q quit") {
		t.Errorf("the full screen was not restored:\n%s", p)
	}
}
