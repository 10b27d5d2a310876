package hub

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"sync"
	"time"
)

// Buffer sizes of a hijacked socket, each with why.
const (
	// readBufSize holds a client frame header plus a typical small JSON
	// message, so most reads take one syscall; longer payloads are read
	// straight into the pooled message buffer. net/http's 4 KiB would be
	// most of an idle socket's memory.
	readBufSize = 256
	// ctrlBufSize fits the largest control frame (2+125 bytes), the only
	// frames coder/websocket writes for us, so each leaves in one write.
	ctrlBufSize = 256
)

// sockConn is the hijacked TCP connection as coder/websocket sees it. Reads
// go to the socket (after any bytes net/http had already buffered). Writes
// come from two places, serialized by wmu: coder/websocket's control frames
// (pongs, close replies) through Write, and the hub's own pre-encoded
// frames through writeFrames. Nothing is written after a close frame.
type sockConn struct {
	net.Conn
	pending []byte
	timeout time.Duration

	wmu       sync.Mutex
	closeSent bool
	deadline  time.Time // write deadline last set
}

// refreshDeadline keeps the write deadline between 3/4 and all of timeout
// ahead, re-arming the runtime timer only every timeout/4 rather than on
// every write (7% of a broadcast's CPU before). wmu is held.
func (s *sockConn) refreshDeadline() {
	now := time.Now()
	if s.deadline.Sub(now) < s.timeout*3/4 {
		s.deadline = now.Add(s.timeout)
		_ = s.Conn.SetWriteDeadline(s.deadline)
	}
}

func (s *sockConn) Read(p []byte) (int, error) {
	if len(s.pending) > 0 {
		n := copy(p, s.pending)
		s.pending = s.pending[n:]
		if len(s.pending) == 0 {
			s.pending = nil
		}
		return n, nil
	}
	return s.Conn.Read(p)
}

// Write carries coder/websocket's frames, always whole control frames.
func (s *sockConn) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closeSent {
		return len(p), nil
	}
	if len(p) > 0 && p[0]&0x0f == 0x8 {
		s.closeSent = true
	}
	s.refreshDeadline()
	return s.Conn.Write(p)
}

// writeFrames writes a batch of complete frames in one writev. endsInClose
// says the batch's last frame is a close frame. The frames may be shared
// with other sockets: their bytes are never modified (the slice headers in
// frames are).
func (s *sockConn) writeFrames(frames [][]byte, endsInClose bool) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closeSent {
		return nil
	}
	s.refreshDeadline()
	var err error
	if len(frames) == 1 {
		_, err = s.Conn.Write(frames[0]) // the common case allocates nothing
	} else {
		bufs := net.Buffers(frames)
		_, err = bufs.WriteTo(s.Conn)
	}
	if endsInClose {
		s.closeSent = true
	}
	return err
}

// hijacker hands coder/websocket our sockConn and small buffers instead of
// net/http's 4 KiB pair, which would otherwise live as long as the socket.
type hijacker struct {
	http.ResponseWriter
	timeout time.Duration
	sc      *sockConn
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	sc := &sockConn{Conn: nc, timeout: h.timeout}
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		sc.pending = bytes.Clone(b)
	}
	h.sc = sc
	return sc, bufio.NewReadWriter(bufio.NewReaderSize(sc, readBufSize), bufio.NewWriterSize(sc, ctrlBufSize)), nil
}

// Unwrap lets http.ResponseController reach the server's writer.
func (h *hijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }
