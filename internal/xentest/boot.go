package xentest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Sentinels printed by the generated /init around the caller's script.
const (
	SentinelInit = "@@XENTEST-INIT" // "@@XENTEST-INIT uptime=SECONDS@@"
	SentinelDone = "@@XENTEST-DONE" // "@@XENTEST-DONE rc=N uptime=SECONDS@@"
)

// DefaultTimeout bounds one boot, from QEMU's start to its exit.
const DefaultTimeout = 300 * time.Second

// BootConfig describes one boot of Xen + dom0.
type BootConfig struct {
	// Files maps guest paths to host paths put in the initramfs; a host
	// directory is copied recursively.
	Files map[string]string
	// Modules are host paths of kernel modules (from the manifest's
	// kernel), insmod'ed in order before InitScript runs.
	Modules []string
	// Env is exported to InitScript.
	Env map[string]string
	// InitScript is busybox sh run by /init in a subshell, with /proc,
	// /sys and devtmpfs mounted and the modules loaded. /init then prints
	// "@@XENTEST-DONE rc=N@@" and powers the machine off.
	InitScript string
	// ExtraXenArgs and ExtraDom0Args extend the Xen and dom0 command lines.
	ExtraXenArgs, ExtraDom0Args string
	// Memory is QEMU's RAM in MiB (2048); Dom0Memory is dom0_mem ("512M").
	Memory     int
	Dom0Memory string
	// Timeout bounds the boot (DefaultTimeout).
	Timeout time.Duration
}

// Boot prepares the cache (see [Prepare]), builds an initramfs from cfg,
// boots it and returns the serial log, which is also kept in t.ArtifactDir()
// (serial.log, serial-2.log, ... for further boots in the same test). The error is non-nil when QEMU failed or timed out or the
// guest never printed the done sentinel; the log is returned even then.
func Boot(ctx context.Context, t testing.TB, cfg BootConfig) (string, error) {
	t.Helper()
	m := Prepare(t)
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Memory == 0 {
		cfg.Memory = 2048
	}
	if cfg.Dom0Memory == "" {
		cfg.Dom0Memory = "512M"
	}
	start := time.Now()
	initrd := filepath.Join(t.TempDir(), "initrd.cpio")
	if err := writeInitramfs(initrd, m, cfg); err != nil {
		return "", fmt.Errorf("initramfs: %w", err)
	}
	if fi, err := os.Stat(initrd); err == nil {
		t.Logf("initramfs: %.1f MiB in %.1fs", float64(fi.Size())/(1<<20), time.Since(start).Seconds())
	}
	serial := filepath.Join(t.ArtifactDir(), "serial.log")
	for n := 2; ; n++ { // one log per boot
		if _, err := os.Stat(serial); err != nil {
			break
		}
		serial = filepath.Join(t.ArtifactDir(), fmt.Sprintf("serial-%d.log", n))
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", m.Script, "boot", m.Dir, initrd, serial)
	cmd.Env = append(os.Environ(),
		"XEN_QEMU_MEM="+strconv.Itoa(cfg.Memory),
		"XEN_QEMU_TIMEOUT="+strconv.Itoa(int(cfg.Timeout/time.Second)),
		"DOM0_MEM="+cfg.Dom0Memory,
		"XEN_EXTRA_ARGS="+cfg.ExtraXenArgs,
		"DOM0_EXTRA_ARGS="+cfg.ExtraDom0Args)
	killGroupOnCancel(cmd)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	start = time.Now()
	runErr := cmd.Run()
	data, _ := os.ReadFile(serial)
	log := string(data)
	t.Logf("boot: %.1fs, QEMU %v, serial log %s (%d bytes)",
		time.Since(start).Seconds(), exitText(runErr), serial, len(data))
	var ee *exec.ExitError
	switch {
	case errors.As(runErr, &ee) && (ee.ExitCode() == 124 || ee.ExitCode() == 137):
		return log, fmt.Errorf("boot timed out after %v; tail of serial log:\n%s", cfg.Timeout, Tail(log, 30))
	case runErr != nil:
		return log, fmt.Errorf("qemu: %v: %s\ntail of serial log:\n%s", runErr, strings.TrimSpace(out.String()), Tail(log, 30))
	case !strings.Contains(log, SentinelDone):
		return log, fmt.Errorf("guest never printed %s (crash?); tail of serial log:\n%s", SentinelDone, Tail(log, 30))
	}
	return log, nil
}

func exitText(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := Lines(strings.TrimRight(s, "\r\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// initScript is the generated /init; %s are the module, env and script parts.
const initScript = `#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
export PATH=/bin HOME=/tmp
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "` + SentinelInit + ` uptime=$(cut -d' ' -f1 /proc/uptime)@@"
%s
# Keep kernel chatter (below KERN_ERR) off the console while tests print.
echo 4 >/proc/sys/kernel/printk
(
%s
cd /
%s
)
rc=$?
sync
echo "` + SentinelDone + ` rc=$rc uptime=$(cut -d' ' -f1 /proc/uptime)@@"
poweroff -f
`

func renderInit(cfg BootConfig) string {
	var mods, env strings.Builder
	for _, m := range cfg.Modules {
		name := "/lib/modules/" + filepath.Base(m)
		fmt.Fprintf(&mods, "insmod %s || echo \"@@XENTEST-INSMOD-FAILED %s@@\"\n", name, name)
	}
	keys := make([]string, 0, len(cfg.Env))
	for k := range cfg.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&env, "export %s=%s\n", k, shellQuote(cfg.Env[k]))
	}
	return fmt.Sprintf(initScript, mods.String(), env.String(), cfg.InitScript)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
