//go:build unix

package loadtest

import "syscall"

// openFilesLimit is this process's open-files limit (the soft one, which
// Go raises to the hard one at start-up), or 0 when unknown or unlimited.
func openFilesLimit() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<30 { // 1<<30: unlimited, in effect
		return 0
	}
	return int(r.Cur)
}
