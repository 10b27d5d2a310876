package loadtest

import (
	"errors"
	"fmt"
	"syscall"
)

// fileHeadroom is what a client process keeps of its open-files limit for
// files other than its sockets: the pipes to its parent, HTTP connections
// to the nodes and their metrics endpoints, the binary and its libraries.
const fileHeadroom = 1024

// headroom is what of an open-files limit of limit a client process keeps
// for other files: fileHeadroom, or half of a limit too small for that
// (a hard limit of 1024 is common), so that some --per-process always fits.
func headroom(limit int) int { return min(fileHeadroom, limit/2) }

// checkPerProcess refuses a --per-process the open-files limit cannot hold
// when the run needs that many sockets in one process, before it opens
// thousands of sockets only to fail on the last ones.
func checkPerProcess(perProcess, sockets int) error {
	return checkPerProcessLimit(perProcess, sockets, openFilesLimit())
}

// checkPerProcessLimit is checkPerProcess under the open-files limit limit
// (0: unknown or unlimited).
func checkPerProcessLimit(perProcess, sockets, limit int) error {
	keep := headroom(limit)
	if limit == 0 || min(perProcess, sockets)+keep <= limit {
		return nil
	}
	return fmt.Errorf("--per-process %d does not fit this machine's open-files limit of %d per process "+
		"(RLIMIT_NOFILE, less %d for other files): use --per-process %d or less, and the bench spreads "+
		"the sockets over that many more child processes", perProcess, limit, keep, limit-keep)
}

// explainDial turns a dial error the load tool's own limits cause into one
// that names the limit and the flag to change; others pass unchanged.
func explainDial(err error) error {
	switch {
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		limit := "its open-files limit"
		if n := openFilesLimit(); n > 0 {
			limit = fmt.Sprintf("its open-files limit (RLIMIT_NOFILE %d)", n)
		}
		return fmt.Errorf("%w: this client process reached %s; lower --per-process "+
			"(sockets per client process; the bench spreads the rest over child processes)", err, limit)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("%w: no free source port left on the loopback source addresses; "+
			"raise --sources (more 127.0.0.x addresses to dial from)", err)
	}
	return err
}
