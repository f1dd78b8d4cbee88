package main

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// setMemoryLimit gives the Go runtime a soft memory limit of half the
// memory the server may use (the machine's, or its cgroup's if lower),
// unless GOMEMLIMIT is set. Under it the collector runs as GOGC (100)
// says, which costs least CPU; near it, it collects sooner, so a load that
// keeps many transactions alive for their 32 s (RFC 3261 17.2.2, RFC 6026)
// grows the heap up to the limit instead of to twice the live heap and
// beyond what the machine has. Past it the runtime bounds the collector to
// half the CPU rather than thrash (the Go GC guide, "Memory limit").
// It returns the limit set, 0 if none.
func setMemoryLimit() int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0
	}
	avail := memTotal()
	if c := cgroupLimit(); c > 0 && (avail == 0 || c < avail) {
		avail = c
	}
	if avail <= 0 {
		return 0
	}
	limit := avail / 2
	debug.SetMemoryLimit(limit)
	return limit
}

// memTotal is the machine's memory from /proc/meminfo, 0 if unknown.
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// cgroupLimit is the cgroup v2 memory.max of this process (systemd's
// MemoryMax=), 0 if none or unknown.
func cgroupLimit() int64 {
	b, err := os.ReadFile("/sys/fs/cgroup/memory.max")
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil { // "max": no limit
		return 0
	}
	return n
}
