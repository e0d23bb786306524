//go:build !linux

package host

import "os/exec"

// dieWithHost has no portable equivalent outside Linux; there a plugin ends
// when its stdin closes or its host kills it on Close.
func dieWithHost(*exec.Cmd) {}
