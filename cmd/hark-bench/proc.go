package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat: the kernel
// reports them in USER_HZ, which is 100 on Linux whatever the tick rate.
const userHZ = 100

// cpuSeconds returns the user+system CPU time a process has used, from
// /proc/<pid>/stat (fields 14 and 15), or 0 when it cannot be read.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	// After "pid (comm)": state is field 3, utime 14, stime 15.
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / userHZ
}

// children lists the pids whose parent is pid.
func children(pid int) []int {
	var out []int
	entries, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, e := range entries {
		b, err := os.ReadFile(e)
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		// Field 4 of /proc/pid/stat is the parent pid (after "pid (comm) state").
		if f := strings.Fields(s[i+1:]); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			child, _ := strconv.Atoi(filepath.Base(filepath.Dir(e)))
			out = append(out, child)
		}
	}
	return out
}

// cpuUse is the CPU time of a server process and of its children (hark's
// plugins), in seconds.
// cpuUse is CPU seconds: hark's server process(es), their plugin
// processes, and (--cluster) the NATS servers' process.
type cpuUse struct{ server, plugins, nats float64 }

func cpuOf(pid int) cpuUse {
	u := cpuUse{server: cpuSeconds(pid)}
	for _, c := range children(pid) {
		u.plugins += cpuSeconds(c)
	}
	return u
}

func (u cpuUse) minus(v cpuUse) cpuUse {
	return cpuUse{u.server - v.server, u.plugins - v.plugins, u.nats - v.nats}
}
