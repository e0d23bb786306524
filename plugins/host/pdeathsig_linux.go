package host

import (
	"os/exec"
	"syscall"
)

// dieWithHost makes the kernel kill a plugin process when hark dies, even by
// SIGKILL, so no plugin outlives its host holding ports or files. (The
// signal follows the thread that started the process; Go's threads outlive
// the goroutines that use them, which is enough here.)
func dieWithHost(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
