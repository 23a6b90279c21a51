package main

import "syscall"

// workerSysProcAttr makes a simulate worker die with the process that
// started it, even when that one is killed without a chance to clean up.
func workerSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
