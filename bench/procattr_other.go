//go:build !linux

package bench

import "syscall"

// childProcAttr returns no process attributes. Outside Linux the child
// stays in the harness's process group, so Ctrl-C at the terminal reaches
// it too and it shuts down by itself.
func childProcAttr() *syscall.SysProcAttr { return nil }
