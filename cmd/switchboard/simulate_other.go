//go:build !linux

package main

import "syscall"

// workerSysProcAttr: without Pdeathsig, a worker stops when its stdin, held
// by the process that started it, closes.
func workerSysProcAttr() *syscall.SysProcAttr { return nil }
