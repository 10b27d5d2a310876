//go:build linux

package loadtest

import (
	"encoding/binary"
	"io"
	"net"
	"sync/atomic"
	"syscall"
)

// rxConn is a client socket that keeps the kernel's receive time of the
// data of its latest read (SO_TIMESTAMPNS). A close frame is then timed
// when it reached the socket, not when the reader goroutine got the CPU
// (on the load tool's one core the readers of sockets closed at the same
// instant run one after another).
type rxConn struct {
	*net.TCPConn
	rc   syscall.RawConn
	oob  []byte
	last atomic.Int64 // unix ns
}

// withRxStamps returns c reading through recvmsg with receive timestamps,
// or c itself when the socket cannot give them.
func withRxStamps(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil || serr != nil {
		return c
	}
	return &rxConn{TCPConn: tc, rc: rc, oob: make([]byte, syscall.CmsgSpace(16))}
}

func (c *rxConn) Read(p []byte) (int, error) {
	var n, oobn int
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			n, oobn, _, _, rerr = syscall.Recvmsg(int(fd), p, c.oob, 0)
			if rerr != syscall.EINTR {
				return rerr != syscall.EAGAIN
			}
		}
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	// No timestamp (the kernel turns receive stamping on asynchronously
	// after the first socket asks): unknown, never an older read's time.
	c.last.Store(0)
	if oobn > 0 {
		if msgs, err := syscall.ParseSocketControlMessage(c.oob[:oobn]); err == nil {
			for _, m := range msgs {
				if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
					sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
					nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
					c.last.Store(sec*1e9 + nsec)
				}
			}
		}
	}
	return n, nil
}

// rxTime is the kernel receive time (unix ns) of the data c last read, 0
// when unknown.
func rxTime(c net.Conn) int64 {
	if r, ok := c.(*rxConn); ok {
		return r.last.Load()
	}
	return 0
}
