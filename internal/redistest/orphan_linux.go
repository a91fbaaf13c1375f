package redistest

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes the kernel kill the server if the test process dies
// without running its cleanups (a test timeout panics), so no server
// outlives the run.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
