package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/xentmem/xentmem/internal/control"
)

// cowdBinary finds the cowd executable: the configured path, else "cowd"
// next to the running xen-tmemd, else $PATH.
func (s *cowdSupervisor) cowdBinary() (string, error) {
	if s.cfg.Binary != "" {
		if err := cowdIsExecutable(s.cfg.Binary); err != nil {
			return "", &control.Error{Code: control.CodeUnavailable, Message: fmt.Sprintf("cowd binary (cowd.binary): %v", err)}
		}
		return s.cfg.Binary, nil
	}
	if exe, err := s.exe(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "cowd")
		if cowdIsExecutable(p) == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("cowd")
	if err != nil {
		return "", &control.Error{Code: control.CodeUnavailable, Message: "cowd binary not found next to xen-tmemd or in $PATH (install cowd, or set cowd.binary)"}
	}
	if !filepath.IsAbs(p) {
		if p, err = filepath.Abs(p); err != nil {
			return "", err
		}
	}
	return p, nil
}

func cowdIsExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// spawn starts a new cowd for a (with the current binary, -r, and the
// attachment's arguments), records it, and marks the attachment starting.
// The child gets its own session, /dev/null as stdin and the log file as
// stdout and stderr (a file, not a pipe: a pipe would break, and SIGPIPE
// kill cowd, when xen-tmemd exits). It is not killed when xen-tmemd exits.
func (s *cowdSupervisor) spawn(a *cowdAttachment) error {
	bin, err := s.cowdBinary()
	if err != nil {
		return err
	}
	args := cowdArgs(a.spec, a.sockPath, a.pidPath)
	a.mu.Lock()
	a.binary, a.args = bin, args
	a.mu.Unlock()
	if err := s.writeRecord(a); err != nil {
		return &control.Error{Code: control.CodeFailed, Message: err.Error()}
	}
	if err := os.MkdirAll(s.cfg.LogDir, 0o750); err != nil {
		return &control.Error{Code: control.CodeFailed, Message: fmt.Sprintf("cowd log dir: %v", err)}
	}
	logf, err := os.OpenFile(a.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return &control.Error{Code: control.CodeFailed, Message: fmt.Sprintf("cowd log: %v", err)}
	}
	defer logf.Close()
	off, _ := logf.Seek(0, io.SeekEnd)
	fmt.Fprintf(logf, "--- %s xen-tmemd starts: %s %s\n", s.now().UTC().Format(time.RFC3339), bin, strings.Join(args, " "))
	null, err := os.Open(os.DevNull)
	if err != nil {
		return &control.Error{Code: control.CodeFailed, Message: err.Error()}
	}
	defer null.Close()
	// A stale pid file would look like readiness.
	os.Remove(a.pidPath)
	env := slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "COWD_DAEMON_READY_FD=") })
	p, err := os.StartProcess(bin, append([]string{bin}, args...), &os.ProcAttr{
		Dir: "/", Env: env, Files: []*os.File{null, logf, logf},
		Sys: &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return &control.Error{Code: control.CodeFailed, Message: fmt.Sprintf("start cowd: %v", err)}
	}
	pid := p.Pid
	p.Release() // we reap with wait4 ourselves (see probe)
	now := s.now()
	a.mu.Lock()
	a.pid, a.own, a.adopted = pid, true, false
	a.state, a.since, a.deadline, a.logOff = cowdStarting, now, now.Add(s.cfg.StartTimeout.Duration), off
	a.mu.Unlock()
	s.log.Debug("cowd started", zap.String("name", a.spec.Name), zap.Int("pid", pid))
	return nil
}

// probe reports whether the process pid is gone and, for our own children,
// how it ended. Our children are reaped here; an adopted process (not our
// child) is alive while /proc/PID/cmdline still shows its command line,
// which also guards against pid reuse.
func (s *cowdSupervisor) probe(pid int, own bool, bin string, args []string) (gone bool, how string) {
	if pid <= 0 {
		return true, "not running"
	}
	var ws syscall.WaitStatus
	for {
		wpid, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err == nil && wpid == pid {
			return true, cowdDescribeWait(ws)
		}
		if err == nil && wpid == 0 {
			return false, ""
		}
		break // ECHILD: not our child (adopted)
	}
	if s.cmdlineMatches(pid, bin, args) {
		return false, ""
	}
	if own {
		return true, "exited (status unknown)"
	}
	return true, "exited (adopted process, exit status unknown)"
}

func cowdDescribeWait(ws syscall.WaitStatus) string {
	switch {
	case ws.Exited():
		return "exited with status " + strconv.Itoa(ws.ExitStatus())
	case ws.Signaled():
		return "killed by signal " + ws.Signal().String()
	}
	return fmt.Sprintf("ended (wait status %#x)", uint32(ws))
}

// cmdlineMatches reports whether /proc/PID/cmdline is the recorded command
// line: the same arguments, and argv[0] the recorded binary or a file
// named cowd (a reinstalled binary may live elsewhere).
func (s *cowdSupervisor) cmdlineMatches(pid int, bin string, args []string) bool {
	b, err := os.ReadFile(filepath.Join(s.cfg.ProcRoot, strconv.Itoa(pid), "cmdline"))
	if err != nil || len(b) == 0 {
		return false // gone, or a zombie
	}
	argv := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	if len(argv) != len(args)+1 || !slices.Equal(argv[1:], args) {
		return false
	}
	return argv[0] == bin || filepath.Base(argv[0]) == "cowd"
}

// ready reports whether a starting cowd serves: it wrote its pid file and,
// with an NBD device, the kernel reports the device connected.
func (s *cowdSupervisor) ready(a *cowdAttachment, pid int) bool {
	if cowdReadPidFile(a.pidPath) != pid {
		return false
	}
	if a.spec.NBDDevice == "" {
		return true
	}
	dev := filepath.Base(a.spec.NBDDevice)
	_, err := os.Stat(filepath.Join(s.cfg.SysRoot, "block", dev, "pid"))
	return err == nil
}

// logTail returns the last lines cowd wrote since offset off.
func cowdLogTail(path string, off int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 2048
	if fi, err := f.Stat(); err == nil && fi.Size()-off > max {
		off = fi.Size() - max
	}
	b, _ := io.ReadAll(io.NewSectionReader(f, off, max))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var keep []string
	for _, l := range lines {
		if l != "" && !strings.HasPrefix(l, "--- ") {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	if len(keep) > 3 {
		keep = keep[len(keep)-3:]
	}
	return strings.Join(keep, " | ")
}

// terminate stops a's process: SIGTERM, then SIGKILL after stop_timeout.
func (s *cowdSupervisor) terminate(a *cowdAttachment) error {
	a.mu.Lock()
	pid, own, bin, args := a.pid, a.own, a.binary, a.args
	a.mu.Unlock()
	if gone, _ := s.probe(pid, own, bin, args); gone {
		return nil
	}
	wait := func(d time.Duration) bool {
		deadline := time.Now().Add(d)
		for {
			if gone, _ := s.probe(pid, own, bin, args); gone {
				return true
			}
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(min(s.cfg.PollInterval, 50*time.Millisecond))
		}
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal cowd (pid %d): %w", pid, err)
	}
	if wait(s.cfg.StopTimeout.Duration) {
		return nil
	}
	s.log.Warn("cowd ignored SIGTERM; killing it", zap.String("name", a.spec.Name), zap.Int("pid", pid),
		zap.Duration("after", s.cfg.StopTimeout.Duration))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill cowd (pid %d): %w", pid, err)
	}
	if wait(5 * time.Second) {
		return nil
	}
	return fmt.Errorf("cowd (pid %d) still runs after SIGKILL", pid)
}

// startWatch starts a's watcher on the supervisor's wait group; false
// when Run is already returning.
func (s *cowdSupervisor) startWatch(ctx context.Context, a *cowdAttachment) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	a.mu.Lock()
	a.watching = true
	a.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer close(a.done)
		s.watch(ctx, a)
	}()
	return true
}

// stopWatch ends a's watcher (if it runs) and waits for it.
func (s *cowdSupervisor) stopWatch(a *cowdAttachment) {
	a.mu.Lock()
	w := a.watching
	a.watching = false
	a.mu.Unlock()
	if !w {
		return
	}
	close(a.stop)
	<-a.done
}

// watch supervises a until it is stopped or ctx ends; it leaves the
// process running in both cases.
func (s *cowdSupervisor) watch(ctx context.Context, a *cowdAttachment) {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.stop:
			return
		case w := <-a.retry:
			a.mu.Lock()
			a.failures, a.lastErr, a.waiter = 0, "", w
			a.mu.Unlock()
			s.restart(a)
		case <-t.C:
		}
		if !s.step(a) {
			return
		}
	}
}

// step advances a's state machine once; false ends the watcher (a first
// start failed: the attach that waits on it cleans up).
func (s *cowdSupervisor) step(a *cowdAttachment) bool {
	a.mu.Lock()
	state, pid, own, bin, args := a.state, a.pid, a.own, a.binary, a.args
	a.mu.Unlock()
	now := s.now()
	switch state {
	case cowdStarting, cowdRunning:
		if gone, how := s.probe(pid, own, bin, args); gone {
			return s.exited(a, how)
		}
		if state == cowdStarting {
			if s.ready(a, pid) {
				s.becameReady(a)
				return true
			}
			a.mu.Lock()
			late := now.After(a.deadline)
			a.mu.Unlock()
			if late {
				err := s.terminate(a)
				how := fmt.Sprintf("not serving after %s", s.cfg.StartTimeout.Duration)
				if err != nil {
					how += "; " + err.Error()
				}
				return s.exited(a, how)
			}
		}
	case cowdRestarting:
		a.mu.Lock()
		due := !now.Before(a.nextTry)
		a.mu.Unlock()
		if due {
			s.restart(a)
		}
	}
	return true
}

// restart starts a new process with -r; a failure to start counts as an
// exit.
func (s *cowdSupervisor) restart(a *cowdAttachment) {
	a.mu.Lock()
	a.restarts++
	a.mu.Unlock()
	if err := s.spawn(a); err != nil {
		a.mu.Lock()
		a.pid = 0
		a.state = cowdStarting
		a.mu.Unlock()
		s.exited(a, err.Error())
		return
	}
	s.log.Info("cowd restarted", zap.String("name", a.spec.Name), zap.Int("pid", a.info().PID))
}

// becameReady marks a serving, links its device and answers a waiter.
func (s *cowdSupervisor) becameReady(a *cowdAttachment) {
	if a.link != "" {
		if err := s.makeLink(a.link, a.spec.NBDDevice); err != nil {
			s.log.Warn("cowd device link", zap.String("link", a.link), zap.Error(err))
		}
	}
	a.mu.Lock()
	a.state = cowdRunning
	w := a.waiter
	a.waiter = nil
	restarted := a.restarts > 0
	a.mu.Unlock()
	if w != nil {
		w <- nil
	}
	if restarted {
		info := a.info()
		s.publish(control.Event{Kind: "cowd", Domain: a.key.domain,
			Message: fmt.Sprintf("%s: cowd serves again (pid %d, restart %d)", a.key, info.PID, info.Restarts)})
	}
}

// makeLink points link at dev, replacing an older link.
func (s *cowdSupervisor) makeLink(link, dev string) error {
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return err
	}
	if cur, err := os.Readlink(link); err == nil && cur == dev {
		return nil
	}
	tmp := link + ".tmp"
	os.Remove(tmp)
	if err := os.Symlink(dev, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, link)
}

// exited handles the end of a's process: the first start of an attach is
// reported to its waiter and not retried; otherwise a restart is scheduled
// with exponential backoff, until max_failures consecutive failures.
func (s *cowdSupervisor) exited(a *cowdAttachment, how string) bool {
	now := s.now()
	a.mu.Lock()
	msg := "cowd " + how
	if tail := cowdLogTail(a.logPath, a.logOff); tail != "" {
		msg += ": " + tail
	}
	a.lastErr = msg
	if w := a.waiter; w != nil && a.restarts == 0 && !a.adopted {
		// First start of an attach: the caller gets the error.
		a.waiter = nil
		a.pid = 0
		a.mu.Unlock()
		w <- fmt.Errorf("%s: %s (log: %s)", a.key, msg, a.logPath)
		return false
	}
	if !a.since.IsZero() && now.Sub(a.since) >= s.cfg.StableAfter.Duration {
		a.failures = 0
	}
	a.failures++
	a.pid = 0
	failures := a.failures
	w := a.waiter
	a.waiter = nil
	if failures >= s.cfg.MaxFailures {
		a.state = cowdFailed
		a.mu.Unlock()
		text := fmt.Sprintf("%s: cowd failed %d times in a row, giving up: %s; fix the cause (see %s), then run cowd-attach again",
			a.key, failures, msg, a.logPath)
		s.log.Error("cowd failed; not restarting", zap.String("name", a.spec.Name), zap.Int("failures", failures),
			zap.String("error", msg), zap.String("log", a.logPath))
		s.publish(control.Event{Kind: "error", Domain: a.key.domain, Message: text})
		if w != nil {
			w <- errors.New(text)
		}
		return true
	}
	delay := s.cfg.BackoffMin.Duration << min(failures-1, 30)
	if delay > s.cfg.BackoffMax.Duration || delay <= 0 {
		delay = s.cfg.BackoffMax.Duration
	}
	a.state, a.nextTry = cowdRestarting, now.Add(delay)
	a.mu.Unlock()
	if w != nil {
		w <- fmt.Errorf("%s: %s; restarting in %s (see %s)", a.key, msg, delay, a.logPath)
	}
	s.log.Warn("cowd exited; restarting", zap.String("name", a.spec.Name), zap.String("how", msg),
		zap.Duration("in", delay), zap.Int("failure", failures), zap.Int("max_failures", s.cfg.MaxFailures))
	s.publish(control.Event{Kind: "cowd", Domain: a.key.domain, Message: fmt.Sprintf(
		"%s: %s; restarting in %s (failure %d of %d)", a.key, msg, delay, failures, s.cfg.MaxFailures)})
	return true
}

// linkTarget returns where link points, or "".
func cowdLinkTarget(link string) string {
	t, err := os.Readlink(link)
	if err != nil {
		return ""
	}
	return t
}
