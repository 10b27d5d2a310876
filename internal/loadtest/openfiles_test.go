package loadtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDialErrorNamesLimit: a dial that fails for want of file descriptors
// says which limit was reached and which flag spreads the sockets; one out
// of source ports names --sources; any other error passes unchanged.
func TestDialErrorNamesLimit(t *testing.T) {
	t.Parallel()
	dialErr := func(errno syscall.Errno) error {
		return fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("socket", errno)})
	}
	err := explainDial(dialErr(syscall.EMFILE))
	require.ErrorIs(t, err, syscall.EMFILE)
	require.Contains(t, err.Error(), "too many open files")
	require.Contains(t, err.Error(), "open-files limit (RLIMIT_NOFILE "+strconv.Itoa(openFilesLimit())+")")
	require.Contains(t, err.Error(), "lower --per-process")

	err = explainDial(dialErr(syscall.EADDRNOTAVAIL))
	require.ErrorIs(t, err, syscall.EADDRNOTAVAIL)
	require.Contains(t, err.Error(), "raise --sources")

	other := dialErr(syscall.ECONNREFUSED)
	require.Equal(t, other, explainDial(other))
	require.Equal(t, context.DeadlineExceeded, explainDial(context.DeadlineExceeded))
}

// TestPoolRefusesPerProcessOverLimit: a --per-process the open-files limit
// cannot hold is refused before any socket opens, naming the limit and
// the value that fits; a run small enough for one process is not.
func TestPoolRefusesPerProcessOverLimit(t *testing.T) {
	t.Parallel()
	limit := openFilesLimit()
	if limit == 0 { // unlimited: nothing to refuse
		p, err := NewPool(context.Background(), PoolConfig{Sockets: 1 << 20, PerProcess: 1 << 20})
		require.NoError(t, err)
		p.Close()
		return
	}
	_, err := NewPool(context.Background(), PoolConfig{Sockets: limit, PerProcess: limit})
	require.Error(t, err)
	require.Contains(t, err.Error(), "open-files limit of "+strconv.Itoa(limit))
	require.Contains(t, err.Error(), "use --per-process "+strconv.Itoa(limit-headroom(limit))+" or less")

	p, err := NewPool(context.Background(), PoolConfig{Sockets: 10, PerProcess: limit})
	require.NoError(t, err)
	p.Close()
}

// TestPerProcessUnderSmallLimit: under an open-files limit not much above
// the headroom (1024 is a common hard limit), a small run is not refused,
// and the --per-process a refusal suggests is one that fits.
func TestPerProcessUnderSmallLimit(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{64, 1024, 1100, 4096, 1 << 20} {
		require.NoError(t, checkPerProcessLimit(10, 10, limit), "limit %d", limit)
		err := checkPerProcessLimit(limit, limit, limit)
		require.Error(t, err, "limit %d", limit)
		fit := limit - headroom(limit)
		require.Positive(t, fit)
		require.Contains(t, err.Error(), "use --per-process "+strconv.Itoa(fit)+" or less")
		require.NoError(t, checkPerProcessLimit(fit, 1<<30, limit), "the suggested value fits limit %d", limit)
		require.Error(t, checkPerProcessLimit(fit+1, 1<<30, limit), "limit %d", limit)
	}
}
