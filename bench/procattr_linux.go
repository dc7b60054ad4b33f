package bench

import "syscall"

// childProcAttr returns the process attributes of the child. Its own
// process group keeps Ctrl-C at the terminal away from the child, so the
// harness stops it in order. Pdeathsig kills it when the thread that started
// it exits, which for this program, with no locked OS threads, happens only
// when the harness process dies.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
