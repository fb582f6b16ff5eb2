package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/xentmem/xentmem/internal/control"
)

// CowdConfig is the [cowd] table: how xen-tmemd supervises the cowd
// processes that serve guest disks (the cowd-attach, cowd-detach and
// cowd-list control ops). Zero values mean the defaults of
// [defaultCowdConfig].
type CowdConfig struct {
	Disable      bool     `toml:"disable"`       // answer the cowd ops with "unavailable"
	Binary       string   `toml:"binary"`        // cowd; default: next to xen-tmemd, then $PATH
	StateDir     string   `toml:"state_dir"`     // sockets, pid files, one JSON record per attachment
	LogDir       string   `toml:"log_dir"`       // each cowd's stdout and stderr: <log_dir>/<name>.log
	LinkDir      string   `toml:"link_dir"`      // stable links <link_dir>/<name> → /dev/nbdN; "" = none
	StartTimeout duration `toml:"start_timeout"` // a start that is not serving by then fails
	StopTimeout  duration `toml:"stop_timeout"`  // SIGTERM, then SIGKILL after this long
	MaxFailures  int      `toml:"max_failures"`  // consecutive failures before giving up
	BackoffMin   duration `toml:"backoff_min"`   // first restart delay; doubles per failure
	BackoffMax   duration `toml:"backoff_max"`   // restart delay cap
	StableAfter  duration `toml:"stable_after"`  // a run this long resets the failure count

	// Not in the file: the roots of /proc and /sys (tests point them
	// elsewhere) and how often a child's liveness is checked.
	ProcRoot     string        `toml:"-"`
	SysRoot      string        `toml:"-"`
	PollInterval time.Duration `toml:"-"`
}

// defaultCowdConfig returns the [cowd] defaults.
func defaultCowdConfig() CowdConfig {
	return CowdConfig{
		StateDir:     "/run/cowd/xen-tmemd",
		LogDir:       "/var/log/cowd",
		LinkDir:      "/dev/cowd",
		StartTimeout: duration{10 * time.Second},
		StopTimeout:  duration{40 * time.Second},
		MaxFailures:  5,
		BackoffMin:   duration{500 * time.Millisecond},
		BackoffMax:   duration{30 * time.Second},
		StableAfter:  duration{time.Minute},
		ProcRoot:     "/proc",
		SysRoot:      "/sys",
		PollInterval: 200 * time.Millisecond,
	}
}

// validate checks the table; config.go's Config.validate calls it.
func (c *CowdConfig) validate() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: cowd."+f, append([]any{errConfig}, a...)...) }
	switch {
	case c.StateDir == "" || !filepath.IsAbs(c.StateDir):
		return bad("state_dir %q: want an absolute path", c.StateDir)
	case c.LogDir == "" || !filepath.IsAbs(c.LogDir):
		return bad("log_dir %q: want an absolute path", c.LogDir)
	case c.LinkDir != "" && !filepath.IsAbs(c.LinkDir):
		return bad("link_dir %q: want an absolute path or \"\"", c.LinkDir)
	case c.Binary != "" && !filepath.IsAbs(c.Binary):
		return bad("binary %q: want an absolute path", c.Binary)
	case c.StartTimeout.Duration < 100*time.Millisecond || c.StartTimeout.Duration > 5*time.Minute:
		return bad("start_timeout %s: want 100ms–5m", c.StartTimeout)
	case c.StopTimeout.Duration < 100*time.Millisecond || c.StopTimeout.Duration > 5*time.Minute:
		return bad("stop_timeout %s: want 100ms–5m", c.StopTimeout)
	case c.MaxFailures < 1 || c.MaxFailures > 1000:
		return bad("max_failures %d: want 1–1000", c.MaxFailures)
	case c.BackoffMin.Duration <= 0 || c.BackoffMax.Duration < c.BackoffMin.Duration:
		return bad("backoff_min %s, backoff_max %s: want 0 < min <= max", c.BackoffMin, c.BackoffMax)
	case c.StableAfter.Duration <= 0:
		return bad("stable_after %s: want > 0", c.StableAfter)
	}
	if len(c.StateDir) > maxSockPath-minSockName {
		return bad("state_dir %q is too long for unix socket paths (at most %d bytes)",
			c.StateDir, maxSockPath-minSockName)
	}
	return nil
}

// Attachment states, as cowd-list reports them.
const (
	cowdStarting   = "starting"   // started, not serving yet
	cowdRunning    = "running"    // serving (pid file written, NBD device connected)
	cowdRestarting = "restarting" // exited; a restart is scheduled
	cowdFailed     = "failed"     // gave up after max_failures; attach again to retry
	cowdStopping   = "stopping"   // being detached
)

// CowdInfo describes one attachment (cowd-attach, cowd-list).
type CowdInfo struct {
	Domain    string    `json:"domain"`
	Disk      string    `json:"disk"`
	Name      string    `json:"name"` // cowd's NAME: export name and file stem
	Format    string    `json:"format"`
	CowFile   string    `json:"cow_file"`
	Base      string    `json:"base,omitempty"`
	NBDDevice string    `json:"nbd_device,omitempty"`
	Link      string    `json:"link,omitempty"` // <link_dir>/<name> → nbd_device
	Socket    string    `json:"socket"`
	URI       string    `json:"uri"` // nbd+unix:///NAME?socket=...
	PID       int       `json:"pid,omitempty"`
	State     string    `json:"state"`
	Adopted   bool      `json:"adopted,omitempty"` // started by an earlier xen-tmemd
	Restarts  int       `json:"restarts"`
	Failures  int       `json:"failures"` // consecutive
	LastError string    `json:"last_error,omitempty"`
	Since     time.Time `json:"since"` // when the current process started
	Log       string    `json:"log"`
}

// CowdListResult answers cowd-list.
type CowdListResult struct {
	Attachments []CowdInfo `json:"attachments"`
}

// CowdDetachResult answers cowd-detach. Detaching what is not attached
// succeeds with detached=false, so hooks can always call it.
type CowdDetachResult struct {
	Detached   bool      `json:"detached"`
	Attachment *CowdInfo `json:"attachment,omitempty"`
}

// cowdSupervisor starts one cowd child per attached guest disk, restarts it
// with backoff when it dies, stops it on detach, and re-adopts the cowd
// processes a previous xen-tmemd left running (the children outlive the
// daemon on purpose: guests keep using their disks across a daemon restart
// or upgrade). It is safe for concurrent use.
type cowdSupervisor struct {
	cfg     CowdConfig
	log     *zap.Logger
	publish func(control.Event)
	exe     func() (string, error) // os.Executable
	now     func() time.Time

	adopted chan struct{} // closed once Run has re-adopted the state dir

	mu       sync.Mutex                  // guards atts, stopping, ctx, closed
	atts     map[cowdKey]*cowdAttachment // by (domain, disk)
	stopping map[cowdKey]chan struct{}   // detaches in progress; closed when done
	ctx      context.Context             // Run's context: the watchers' lifetime
	closed   bool                        // Run is returning: no new watchers
	wg       sync.WaitGroup              // watchers; Add only under mu with !closed
}

// cowdKey names an attachment.
type cowdKey struct{ domain, disk string }

func (k cowdKey) String() string { return k.domain + "/" + k.disk }

// newCowdSupervisor returns a supervisor; nil (not an error) when cfg
// disables it. publish receives lifecycle events (it may be nil).
func newCowdSupervisor(cfg CowdConfig, log *zap.Logger, publish func(control.Event)) (*cowdSupervisor, error) {
	if cfg.Disable {
		return nil, nil
	}
	def := defaultCowdConfig()
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = def.ProcRoot
	}
	if cfg.SysRoot == "" {
		cfg.SysRoot = def.SysRoot
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = def.PollInterval
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if publish == nil {
		publish = func(control.Event) {}
	}
	return &cowdSupervisor{cfg: cfg, log: log, publish: publish, exe: os.Executable, now: time.Now,
		adopted: make(chan struct{}), atts: map[cowdKey]*cowdAttachment{},
		stopping: map[cowdKey]chan struct{}{}}, nil
}

// wrap returns a control.Handler that serves the cowd ops with s and passes
// every other op to next. On a nil supervisor the cowd ops answer
// "unavailable".
func (s *cowdSupervisor) wrap(next control.Handler) control.Handler {
	return func(ctx context.Context, op string, args any) (any, error) {
		switch op {
		case control.OpCowdList, control.OpCowdAttach, control.OpCowdDetach:
			if s == nil {
				return nil, &control.Error{Code: control.CodeUnavailable,
					Message: "cowd supervision is disabled ([cowd] disable = true in the configuration)"}
			}
			return s.handle(ctx, op, args)
		}
		return next(ctx, op, args)
	}
}

// handle serves cowd-list, cowd-attach and cowd-detach. It waits until Run
// has re-adopted the state directory.
func (s *cowdSupervisor) handle(ctx context.Context, op string, args any) (any, error) {
	select {
	case <-s.adopted:
	case <-ctx.Done():
		return nil, &control.Error{Code: control.CodeUnavailable, Message: "cowd supervisor is still starting"}
	}
	switch op {
	case control.OpCowdList:
		return s.list(), nil
	case control.OpCowdAttach:
		return s.attach(ctx, args.(*control.CowdAttachArgs))
	case control.OpCowdDetach:
		a := args.(*control.CowdDetachArgs)
		return s.detach(ctx, cowdKey{a.Domain, a.Disk})
	}
	return nil, &control.Error{Code: control.CodeUnknownOp, Message: op}
}

// Run re-adopts (or restarts) the attachments recorded in the state
// directory, then supervises until ctx is done. It returns after every
// watcher has exited and leaves the cowd processes running. Records it
// cannot use are logged (and kept); the cowd ops wait until Run has read
// them.
func (s *cowdSupervisor) Run(ctx context.Context) {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	if err := s.readopt(ctx); err != nil {
		s.log.Error("cowd state directory", zap.String("dir", s.cfg.StateDir), zap.Error(err))
	}
	close(s.adopted)
	<-ctx.Done()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wg.Wait()
}

// list returns every attachment, sorted by domain and disk.
func (s *cowdSupervisor) list() *CowdListResult {
	s.mu.Lock()
	atts := make([]*cowdAttachment, 0, len(s.atts))
	for _, a := range s.atts {
		atts = append(atts, a)
	}
	s.mu.Unlock()
	res := &CowdListResult{Attachments: []CowdInfo{}}
	for _, a := range atts {
		res.Attachments = append(res.Attachments, a.info())
	}
	sort.Slice(res.Attachments, func(i, j int) bool {
		x, y := res.Attachments[i], res.Attachments[j]
		return x.Domain < y.Domain || x.Domain == y.Domain && x.Disk < y.Disk
	})
	return res
}

// attach starts cowd for a disk, or returns the attachment that already
// serves it with the same settings (a failed one is retried).
func (s *cowdSupervisor) attach(ctx context.Context, args *control.CowdAttachArgs) (*CowdInfo, error) {
	key := cowdKey{args.Domain, args.Disk}
	if err := s.waitStopping(ctx, key); err != nil {
		return nil, err
	}
	spec, err := s.newSpec(args)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if a := s.atts[key]; a != nil {
		s.mu.Unlock()
		return s.reattach(ctx, a, spec)
	}
	if err := s.checkConflicts(key, spec); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if spec.NBDDevice == nbdAuto {
		dev, err := s.freeNBD()
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		spec.NBDDevice = dev
	}
	wctx := s.ctx
	if wctx == nil {
		s.mu.Unlock()
		return nil, &control.Error{Code: control.CodeUnavailable, Message: "cowd supervisor is not running"}
	}
	a := newCowdAttachment(key, spec, s.cfg)
	if len(a.sockPath) > maxSockPath {
		s.mu.Unlock()
		return nil, &control.Error{Code: control.CodeBadRequest, Message: fmt.Sprintf(
			"socket path %s is longer than %d bytes: shorten cowd.state_dir or the domain and disk names",
			a.sockPath, maxSockPath)}
	}
	s.atts[key] = a
	s.mu.Unlock()

	// drop forgets a failed first start; a concurrent attach of the same
	// disk waiting in reattach sees the failure.
	drop := func(err error) {
		s.mu.Lock()
		delete(s.atts, key)
		s.mu.Unlock()
		s.removeFiles(a)
		a.mu.Lock()
		a.state, a.lastErr, a.pid = cowdFailed, err.Error(), 0
		a.mu.Unlock()
	}
	if err := s.prepareImage(spec); err != nil {
		drop(err)
		return nil, err
	}
	waiter := make(chan error, 1)
	a.mu.Lock()
	a.waiter = waiter
	a.mu.Unlock()
	if err := s.spawn(a); err != nil {
		drop(err)
		return nil, err
	}
	if !s.startWatch(wctx, a) {
		s.terminate(a)
		err := &control.Error{Code: control.CodeUnavailable, Message: "xen-tmemd is stopping"}
		drop(err)
		return nil, err
	}
	select {
	case err = <-waiter:
	case <-ctx.Done():
		err = fmt.Errorf("attach %s: %w", key, ctx.Err())
	}
	if err != nil {
		s.stopWatch(a)
		if terr := s.terminate(a); terr != nil {
			s.log.Warn("cowd did not stop", zap.String("name", spec.Name), zap.Error(terr))
		}
		drop(err)
		return nil, &control.Error{Code: control.CodeFailed, Message: err.Error()}
	}
	info := a.info()
	s.log.Info("cowd attached", zap.String("domain", key.domain), zap.String("disk", key.disk),
		zap.Int("pid", info.PID), zap.String("nbd", spec.NBDDevice), zap.String("socket", info.Socket))
	s.publish(control.Event{Kind: "cowd", Domain: key.domain,
		Message: fmt.Sprintf("attached %s (cowd %s, pid %d%s)", key, spec.Name, info.PID, cowdNBDNote(spec.NBDDevice))})
	return &info, nil
}

func cowdNBDNote(dev string) string {
	if dev == "" {
		return ""
	}
	return ", " + dev
}

// reattach answers an attach for a key that is already attached.
func (s *cowdSupervisor) reattach(ctx context.Context, a *cowdAttachment, spec cowdSpec) (*CowdInfo, error) {
	if !a.spec.sameAs(spec) {
		return nil, &control.Error{Code: control.CodeFailed, Message: fmt.Sprintf(
			"%s is already attached to %s (%s); detach it first", a.key, a.spec.CowFile, a.spec.Format)}
	}
	a.mu.Lock()
	state := a.state
	a.mu.Unlock()
	switch state {
	case cowdFailed:
		w := make(chan error, 1)
		select {
		case a.retry <- w:
		case <-a.done:
			return nil, &control.Error{Code: control.CodeUnavailable, Message: "cowd supervisor is stopping"}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		select {
		case err := <-w:
			if err != nil {
				return nil, &control.Error{Code: control.CodeFailed, Message: err.Error()}
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case cowdStarting:
		// Another attach (or a restart) is starting it: wait for the outcome.
		t := time.NewTicker(s.cfg.PollInterval)
		defer t.Stop()
		for {
			a.mu.Lock()
			state = a.state
			a.mu.Unlock()
			if state != cowdStarting {
				break
			}
			select {
			case <-t.C:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	info := a.info()
	if info.State == cowdFailed {
		return nil, &control.Error{Code: control.CodeFailed, Message: fmt.Sprintf("%s: cowd failed: %s", a.key, info.LastError)}
	}
	return &info, nil
}

// waitStopping waits for a detach of key that is in progress.
func (s *cowdSupervisor) waitStopping(ctx context.Context, key cowdKey) error {
	s.mu.Lock()
	ch := s.stopping[key]
	s.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkConflicts refuses a second writer of a CoW file and a second user of
// an NBD device. s.mu is held.
func (s *cowdSupervisor) checkConflicts(key cowdKey, spec cowdSpec) error {
	for k, a := range s.atts {
		switch {
		case a.spec.CowFile == spec.CowFile:
			return &control.Error{Code: control.CodeFailed, Message: fmt.Sprintf(
				"%s is already served for %s: a CoW file can back only one disk", spec.CowFile, k)}
		case spec.NBDDevice != "" && a.spec.NBDDevice == spec.NBDDevice:
			return &control.Error{Code: control.CodeFailed, Message: fmt.Sprintf(
				"%s is already used by %s", spec.NBDDevice, k)}
		case a.spec.Name == spec.Name:
			return &control.Error{Code: control.CodeFailed, Message: fmt.Sprintf(
				"%s and %s map to the same cowd name %q; rename the disk", key, k, spec.Name)}
		}
	}
	return nil
}

// detach stops the cowd serving key and forgets the attachment.
func (s *cowdSupervisor) detach(ctx context.Context, key cowdKey) (*CowdDetachResult, error) {
	if err := s.waitStopping(ctx, key); err != nil {
		return nil, err
	}
	s.mu.Lock()
	a := s.atts[key]
	if a == nil {
		s.mu.Unlock()
		return &CowdDetachResult{}, nil
	}
	delete(s.atts, key)
	done := make(chan struct{})
	s.stopping[key] = done
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.stopping, key)
		s.mu.Unlock()
		close(done)
	}()

	s.stopWatch(a)
	a.mu.Lock()
	a.state = cowdStopping
	a.mu.Unlock()
	err := s.terminate(a)
	info := a.info()
	if err != nil {
		// Keep the record: a later daemon re-adopts and can retry.
		s.mu.Lock()
		s.atts[key] = a
		s.mu.Unlock()
		a.mu.Lock()
		a.state, a.lastErr = cowdFailed, err.Error()
		a.mu.Unlock()
		return nil, &control.Error{Code: control.CodeFailed, Message: fmt.Sprintf("detach %s: %v", key, err)}
	}
	s.removeFiles(a)
	s.log.Info("cowd detached", zap.String("domain", key.domain), zap.String("disk", key.disk))
	s.publish(control.Event{Kind: "cowd", Domain: key.domain, Message: "detached " + key.String()})
	info.State, info.PID = "detached", 0
	return &CowdDetachResult{Detached: true, Attachment: &info}, nil
}

// removeFiles deletes what an attachment left in the state directory and
// its device link.
func (s *cowdSupervisor) removeFiles(a *cowdAttachment) {
	paths := []string{a.recordPath, a.pidPath, a.sockPath}
	if a.link != "" && cowdLinkTarget(a.link) == a.spec.NBDDevice {
		paths = append(paths, a.link)
	}
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("cowd cleanup", zap.String("path", p), zap.Error(err))
		}
	}
}
