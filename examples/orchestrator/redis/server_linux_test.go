package main

import "syscall"

// childAttr makes the tests' redis-server die with the test binary, should
// the binary be killed before it stops the server.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
