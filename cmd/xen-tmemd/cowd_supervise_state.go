package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/xentmem/xentmem/cowd"
	"github.com/xentmem/xentmem/internal/control"
)

const (
	// cowdNameMax bounds the cowd NAME we derive, so that
	// <state_dir>/<name>.sock fits in a unix socket address.
	cowdNameMax = 64
	// maxSockPath is the usable length of sun_path on Linux.
	maxSockPath = 107
	// minSockName is the room state_dir must leave in a socket path.
	minSockName = 24
	// nbdAuto asks the supervisor to pick a free /dev/nbdN.
	nbdAuto = "auto"
	// cowdRecordVersion is the version of the JSON records in the state dir.
	cowdRecordVersion = 1
	// maxCowdRecord bounds a record file.
	maxCowdRecord = 64 << 10
)

var (
	cowdNameOK   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	nbdDevicePat = regexp.MustCompile(`^/dev/nbd[0-9]{1,4}$`)
	// errCowdRecord is wrapped by every record decoding error.
	errCowdRecord = errors.New("bad cowd attachment record")
)

// cowdSpec is what an attachment serves: everything cowd's command line
// is made from.
type cowdSpec struct {
	Domain    string `json:"domain"`
	Disk      string `json:"disk"`
	Name      string `json:"name"`
	Format    string `json:"format"`
	CowFile   string `json:"cow_file"`
	Base      string `json:"base,omitempty"`
	NBDDevice string `json:"nbd_device,omitempty"` // "", /dev/nbdN, or nbdAuto before one is picked
}

// sameAs reports whether an attach request (o) asks for what s serves.
func (s cowdSpec) sameAs(o cowdSpec) bool {
	nbdOK := o.NBDDevice == s.NBDDevice || o.NBDDevice == nbdAuto && s.NBDDevice != ""
	return s.Format == o.Format && s.CowFile == o.CowFile && (o.Base == "" || o.Base == s.Base) && nbdOK
}

// cowdRecord is the JSON file <state_dir>/<name>.json: enough to verify and
// re-adopt a running cowd, or to restart it, after xen-tmemd restarts.
type cowdRecord struct {
	Version int       `json:"version"`
	Spec    cowdSpec  `json:"spec"`
	Binary  string    `json:"binary"` // argv[0] of the last start
	Args    []string  `json:"args"`   // argv[1:]
	Created time.Time `json:"created"`
}

// decodeCowdRecord parses and checks a record. Errors wrap errCowdRecord.
func decodeCowdRecord(b []byte) (*cowdRecord, error) {
	if len(b) > maxCowdRecord {
		return nil, fmt.Errorf("%w: %d bytes", errCowdRecord, len(b))
	}
	var r cowdRecord
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %v", errCowdRecord, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", errCowdRecord)
	}
	s := r.Spec
	switch {
	case r.Version != cowdRecordVersion:
		return nil, fmt.Errorf("%w: version %d, want %d", errCowdRecord, r.Version, cowdRecordVersion)
	case s.Domain == "" || s.Disk == "":
		return nil, fmt.Errorf("%w: domain and disk are required", errCowdRecord)
	case !cowdNameOK.MatchString(s.Name) || len(s.Name) > cowdNameMax:
		return nil, fmt.Errorf("%w: name %q", errCowdRecord, s.Name)
	case s.Format != "dscow" && s.Format != "qcow2":
		return nil, fmt.Errorf("%w: format %q", errCowdRecord, s.Format)
	case !filepath.IsAbs(s.CowFile):
		return nil, fmt.Errorf("%w: cow_file %q is not absolute", errCowdRecord, s.CowFile)
	case s.NBDDevice != "" && !nbdDevicePat.MatchString(s.NBDDevice):
		return nil, fmt.Errorf("%w: nbd_device %q", errCowdRecord, s.NBDDevice)
	case r.Binary == "" || len(r.Args) < 2:
		return nil, fmt.Errorf("%w: no command line", errCowdRecord)
	case r.Args[len(r.Args)-2] != s.Name || r.Args[len(r.Args)-1] != s.CowFile:
		return nil, fmt.Errorf("%w: command line does not end in NAME COWFILE", errCowdRecord)
	}
	return &r, nil
}

// cowdName derives cowd's NAME (export name, file stem) from a domain and a
// disk: "<domain>-<disk>" when both are plain, else a cleaned form with a
// hash suffix so that different keys stay different.
func cowdName(domain, disk string) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
				return r
			}
			return '_'
		}, s)
	}
	raw := domain + "-" + disk
	n := clean(domain) + "-" + clean(disk)
	if n == raw && len(n) <= cowdNameMax && cowdNameOK.MatchString(n) {
		return n
	}
	sum := sha256.Sum256([]byte(domain + "\x00" + disk))
	suffix := "-" + hex.EncodeToString(sum[:4])
	if len(n) > cowdNameMax-len(suffix) {
		n = n[:cowdNameMax-len(suffix)]
	}
	if !cowdNameOK.MatchString(n) {
		n = "d" + n[min(1, len(n)):]
	}
	return n + suffix
}

// newSpec checks an attach request and turns it into a spec.
func (s *cowdSupervisor) newSpec(a *control.CowdAttachArgs) (cowdSpec, error) {
	bad := func(f string, v ...any) (cowdSpec, error) {
		return cowdSpec{}, &control.Error{Code: control.CodeBadRequest, Message: fmt.Sprintf(f, v...)}
	}
	if !filepath.IsAbs(a.CowFile) {
		return bad("cow_file %q: want an absolute path", a.CowFile)
	}
	if a.Base != "" && !filepath.IsAbs(a.Base) {
		return bad("base %q: want an absolute path", a.Base)
	}
	if a.NBDDevice != "" && a.NBDDevice != nbdAuto && !nbdDevicePat.MatchString(a.NBDDevice) {
		return bad("nbd_device %q: want /dev/nbdN or %q", a.NBDDevice, nbdAuto)
	}
	if strings.ContainsAny(a.Domain+a.Disk, "\x00/") {
		return bad("domain and disk may not contain '/' or NUL")
	}
	return cowdSpec{Domain: a.Domain, Disk: a.Disk, Name: cowdName(a.Domain, a.Disk), Format: a.Format,
		CowFile: filepath.Clean(a.CowFile), Base: cowdCleanOpt(a.Base), NBDDevice: a.NBDDevice}, nil
}

func cowdCleanOpt(p string) string {
	if p == "" {
		return ""
	}
	return filepath.Clean(p)
}

// prepareImage creates a missing dscow image over its base, or checks that
// an existing one belongs to the base the request names. qcow2 overlays
// are left to cowd.
func (s *cowdSupervisor) prepareImage(spec cowdSpec) error {
	if spec.Format != "dscow" {
		return nil
	}
	im, err := cowd.OpenImage(spec.CowFile, &cowd.ImageOptions{ForceShare: true})
	if errors.Is(err, os.ErrNotExist) {
		if spec.Base == "" {
			return &control.Error{Code: control.CodeBadRequest, Message: fmt.Sprintf(
				"%s does not exist; give base to create it, or create it with 'cowd-img create'", spec.CowFile)}
		}
		h, err := cowd.Create(spec.CowFile, spec.Base, nil)
		if err != nil {
			return &control.Error{Code: control.CodeFailed, Message: err.Error()}
		}
		s.log.Info("created dscow image", zap.String("image", spec.CowFile), zap.String("base", h.Base.Path),
			zap.Int64("size", h.Size))
		return nil
	}
	if err != nil {
		return &control.Error{Code: control.CodeFailed, Message: err.Error()}
	}
	defer im.Close()
	if spec.Base != "" && !cowdSamePath(im.Header.Base.Path, spec.Base) {
		return &control.Error{Code: control.CodeFailed, Message: fmt.Sprintf(
			"%s is an overlay of %s, not of %s", spec.CowFile, im.Header.Base.Path, spec.Base)}
	}
	return nil
}

// samePath compares two paths after resolving symbolic links.
func cowdSamePath(a, b string) bool {
	if a == b {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

// freeNBD picks the lowest /dev/nbdN that the kernel reports unconnected
// (no <sys>/block/nbdN/pid) and no attachment uses. s.mu is held.
func (s *cowdSupervisor) freeNBD() (string, error) {
	ents, err := os.ReadDir(filepath.Join(s.cfg.SysRoot, "block"))
	if err != nil {
		return "", &control.Error{Code: control.CodeFailed, Message: fmt.Sprintf("no NBD devices: %v", err)}
	}
	used := map[string]bool{}
	for _, a := range s.atts {
		used[a.spec.NBDDevice] = true
	}
	var nums []int
	for _, e := range ents {
		n, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "nbd"))
		if !strings.HasPrefix(e.Name(), "nbd") || err != nil {
			continue
		}
		nums = append(nums, n)
	}
	if len(nums) == 0 {
		return "", &control.Error{Code: control.CodeFailed, Message: "no NBD devices in " +
			filepath.Join(s.cfg.SysRoot, "block") + " (load the driver: modprobe nbd nbds_max=64)"}
	}
	sort.Ints(nums)
	for _, n := range nums {
		dev := "/dev/nbd" + strconv.Itoa(n)
		if used[dev] {
			continue
		}
		if _, err := os.Stat(filepath.Join(s.cfg.SysRoot, "block", "nbd"+strconv.Itoa(n), "pid")); err == nil {
			continue // connected by someone else
		}
		return dev, nil
	}
	return "", &control.Error{Code: control.CodeFailed, Message: fmt.Sprintf(
		"all %d NBD devices are in use (reload the driver with a larger nbds_max)", len(nums))}
}

// cowdAttachment is one supervised disk. spec, key and the paths never
// change; the rest is guarded by mu.
type cowdAttachment struct {
	key        cowdKey
	spec       cowdSpec
	recordPath string
	pidPath    string
	sockPath   string
	logPath    string
	link       string // "" without an NBD device or link_dir

	stop  chan struct{}   // closed to end the watcher
	retry chan chan error // attach of a failed attachment: restart now
	done  chan struct{}   // closed when the watcher returns

	mu       sync.Mutex // guards everything below
	args     []string   // argv[1:] of the current process
	binary   string     // argv[0] of the current process
	pid      int
	own      bool // pid is our child (Wait4 works); otherwise adopted
	adopted  bool
	state    string
	restarts int
	failures int
	lastErr  string
	since    time.Time
	nextTry  time.Time  // restarting: when
	deadline time.Time  // starting: ready by then
	logOff   int64      // log size when the current process started
	waiter   chan error // told when the current start succeeds or fails
	watching bool
}

func newCowdAttachment(key cowdKey, spec cowdSpec, cfg CowdConfig) *cowdAttachment {
	a := &cowdAttachment{key: key, spec: spec,
		recordPath: filepath.Join(cfg.StateDir, spec.Name+".json"),
		pidPath:    filepath.Join(cfg.StateDir, spec.Name+".pid"),
		sockPath:   filepath.Join(cfg.StateDir, spec.Name+".sock"),
		logPath:    filepath.Join(cfg.LogDir, spec.Name+".log"),
		stop:       make(chan struct{}), retry: make(chan chan error), done: make(chan struct{}),
		state: cowdStarting}
	if spec.NBDDevice != "" && spec.NBDDevice != nbdAuto && cfg.LinkDir != "" {
		a.link = filepath.Join(cfg.LinkDir, spec.Name)
	}
	a.args = cowdArgs(spec, a.sockPath, a.pidPath)
	return a
}

// cowdArgs is cowd's command line after argv[0].
func cowdArgs(spec cowdSpec, sock, pidFile string) []string {
	args := []string{"-n", "-r", "--listen", "unix:" + sock, "-i", pidFile}
	if spec.Format != "dscow" {
		args = append(args, "-p", spec.Format)
	}
	if spec.NBDDevice != "" {
		args = append(args, "--nbd-device", spec.NBDDevice)
	}
	return append(args, spec.Name, spec.CowFile)
}

// info is the attachment as cowd-list shows it.
func (a *cowdAttachment) info() CowdInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	return CowdInfo{Domain: a.key.domain, Disk: a.key.disk, Name: a.spec.Name, Format: a.spec.Format,
		CowFile: a.spec.CowFile, Base: a.spec.Base, NBDDevice: a.spec.NBDDevice, Link: a.link,
		Socket: a.sockPath, URI: "nbd+unix:///" + a.spec.Name + "?socket=" + a.sockPath,
		PID: a.pid, State: a.state, Adopted: a.adopted, Restarts: a.restarts, Failures: a.failures,
		LastError: a.lastErr, Since: a.since, Log: a.logPath}
}

// writeRecord stores the attachment's record atomically.
func (s *cowdSupervisor) writeRecord(a *cowdAttachment) error {
	if err := os.MkdirAll(s.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("cowd state dir: %w", err)
	}
	a.mu.Lock()
	bin, args := a.binary, a.args
	a.mu.Unlock()
	if bin == "" {
		bin = "cowd"
	}
	b, err := json.MarshalIndent(cowdRecord{Version: cowdRecordVersion, Spec: a.spec, Binary: bin, Args: args,
		Created: s.now().UTC()}, "", "  ")
	if err != nil {
		return err
	}
	tmp := a.recordPath + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("cowd state: %w", err)
	}
	if err := os.Rename(tmp, a.recordPath); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cowd state: %w", err)
	}
	return nil
}

// readopt loads every record of the state dir: a cowd that still runs with
// the recorded command line is adopted, anything else is restarted (the
// guest may still be using the disk). A bad record is logged and kept for
// the operator.
func (s *cowdSupervisor) readopt(ctx context.Context) error {
	paths, err := filepath.Glob(filepath.Join(s.cfg.StateDir, "*.json"))
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r, err := decodeCowdRecord(b)
		if err == nil && filepath.Base(p) != r.Spec.Name+".json" {
			err = fmt.Errorf("%w: name %q in file %s", errCowdRecord, r.Spec.Name, filepath.Base(p))
		}
		if err != nil {
			s.log.Error("ignoring cowd record; detach the disk by hand or remove the file",
				zap.String("file", p), zap.Error(err))
			continue
		}
		s.adoptOne(ctx, r)
	}
	return errors.Join(errs...)
}

// adoptOne takes over one recorded attachment.
func (s *cowdSupervisor) adoptOne(ctx context.Context, r *cowdRecord) {
	key := cowdKey{r.Spec.Domain, r.Spec.Disk}
	a := newCowdAttachment(key, r.Spec, s.cfg)
	a.binary, a.args = r.Binary, r.Args
	pid := cowdReadPidFile(a.pidPath)
	log := s.log.With(zap.String("domain", key.domain), zap.String("disk", key.disk), zap.String("name", r.Spec.Name))
	if pid > 0 && s.cmdlineMatches(pid, r.Binary, r.Args) {
		a.pid, a.adopted, a.state = pid, true, cowdRunning
		if fi, err := os.Stat(filepath.Join(s.cfg.ProcRoot, strconv.Itoa(pid))); err == nil {
			a.since = fi.ModTime()
		}
		log.Info("re-adopted running cowd", zap.Int("pid", pid))
		s.publish(control.Event{Kind: "cowd", Domain: key.domain, Message: fmt.Sprintf("re-adopted %s (pid %d)", key, pid)})
	} else {
		// Not running: restart it with -r at the first watcher tick.
		a.args = cowdArgs(r.Spec, a.sockPath, a.pidPath)
		a.state, a.nextTry, a.lastErr = cowdRestarting, s.now(), "not running when xen-tmemd started"
		log.Warn("recorded cowd is not running; restarting it", zap.Int("pid", pid))
		s.publish(control.Event{Kind: "cowd", Domain: key.domain,
			Message: fmt.Sprintf("%s: cowd was not running when xen-tmemd started; restarting it", key)})
	}
	s.mu.Lock()
	s.atts[key] = a
	s.mu.Unlock()
	s.startWatch(ctx, a)
}

// readPidFile returns the pid in path, or 0.
func cowdReadPidFile(path string) int {
	b, err := os.ReadFile(path)
	if err != nil || len(b) > 32 {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
