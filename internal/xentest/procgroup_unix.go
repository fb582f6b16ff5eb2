//go:build unix

package xentest

import (
	"os/exec"
	"syscall"
)

// killGroupOnCancel makes cancelling cmd's context kill its whole process
// group (timeout(1) and QEMU), not just the shell.
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
