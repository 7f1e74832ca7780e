package redistest

import "syscall"

// childAttr makes a redis-server started by the tests die with the test
// binary, should the binary be killed before it stops the server.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
