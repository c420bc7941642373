//go:build unix

package warmpool

import "syscall"

// openFileLimit returns the process's open-file limit (RLIMIT_NOFILE, the
// soft limit, which Go raises to the hard limit at start-up on Linux).
func openFileLimit() (int64, bool) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur == 0 || l.Cur > 1<<62 {
		return 0, false
	}
	return int64(l.Cur), true
}
