//go:build linux

package loadtest

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRxStamps: reads through withRxStamps return the data as a plain read
// would, note the kernel's receive time of it, and end with io.EOF.
func TestRxStamps(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	done := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); done <- c }()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	rc := withRxStamps(c)
	_, ok := rc.(*rxConn)
	require.True(t, ok)
	defer rc.Close()
	srv := <-done
	require.NotNil(t, srv)
	require.Zero(t, rxTime(rc))

	// The kernel turns receive stamping on asynchronously after the first
	// socket of the system asks for it: until then reads carry none, and
	// rxTime says unknown (0), never an older read's time.
	buf := make([]byte, 64)
	var before, after, rx int64
	for i := 0; i < 1000 && rx == 0; i++ {
		before = time.Now().UnixNano()
		_, err = srv.Write([]byte("close frame"))
		require.NoError(t, err)
		n, err := rc.Read(buf)
		after = time.Now().UnixNano()
		require.NoError(t, err)
		require.Equal(t, "close frame", string(buf[:n]))
		if rx = rxTime(rc); rx == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	require.GreaterOrEqual(t, rx, before)
	require.LessOrEqual(t, rx, after)

	require.NoError(t, rc.SetReadDeadline(time.Now().Add(time.Millisecond)))
	_, err = rc.Read(buf)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout())
	require.NoError(t, rc.SetReadDeadline(time.Time{}))

	require.NoError(t, srv.Close())
	_, err = rc.Read(buf)
	require.ErrorIs(t, err, io.EOF)
}
