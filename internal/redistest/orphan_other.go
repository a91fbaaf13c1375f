//go:build !linux

package redistest

import "os/exec"

// dieWithTest does nothing where the kernel cannot tie a child's life to its
// parent's: a test process that dies without its cleanups leaves its
// servers running there.
func dieWithTest(*exec.Cmd) {}
