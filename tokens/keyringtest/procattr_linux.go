package keyringtest

import "syscall"

// procAttr makes the daemons die with the test process.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
