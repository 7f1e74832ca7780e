//go:build !linux

package redistest

import "syscall"

// childAttr: outside Linux, a redis-server left behind by a killed test
// binary must be stopped by hand.
func childAttr() *syscall.SysProcAttr { return nil }
