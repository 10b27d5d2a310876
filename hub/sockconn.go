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
	// preamble is the 101 response, held back so that it leaves in the same
	// write as the welcome frame (one syscall and one TCP segment less per
	// connect). Guarded by wmu; nil once written.
	preamble []byte
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
	if s.preamble != nil {
		if _, err := s.writeBuffers([][]byte{p}); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return s.Conn.Write(p)
}

// writeBuffers writes frames after any held-back preamble. wmu is held.
func (s *sockConn) writeBuffers(frames [][]byte) (int64, error) {
	if s.preamble != nil {
		frames = append([][]byte{s.preamble}, frames...)
		s.preamble = nil
	}
	if len(frames) == 1 {
		n, err := s.Conn.Write(frames[0]) // the common case allocates nothing
		return int64(n), err
	}
	bufs := net.Buffers(frames)
	return bufs.WriteTo(s.Conn)
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
	_, err := s.writeBuffers(frames)
	if endsInClose {
		s.closeSent = true
	}
	return err
}

// hijacker hands coder/websocket our sockConn and small buffers instead of
// net/http's 4 KiB pair, which would otherwise live as long as the socket.
// It also keeps the 101 response from net/http: coder/websocket's
// WriteHeader(101) is only noted, and Hijack encodes the response into the
// sockConn's preamble, written together with the first frame.
type hijacker struct {
	http.ResponseWriter
	timeout  time.Duration
	sc       *sockConn
	upgraded bool
}

// WriteHeader holds back 101 (see hijacker); any other status is a refusal
// written by coder/websocket and goes out as usual.
func (h *hijacker) WriteHeader(code int) {
	if code == http.StatusSwitchingProtocols {
		h.upgraded = true
		return
	}
	h.ResponseWriter.WriteHeader(code)
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
	if h.upgraded {
		sc.preamble = switchingProtocols(h.ResponseWriter.Header())
	}
	h.sc = sc
	return sc, bufio.NewReadWriter(bufio.NewReaderSize(sc, readBufSize), bufio.NewWriterSize(sc, ctrlBufSize)), nil
}

// switchingProtocols encodes the 101 response with hdr (set by
// coder/websocket, and any middleware before it). A value's CR or LF
// becomes a space, as net/http does, so no header can be smuggled in.
func switchingProtocols(hdr http.Header) []byte {
	b := make([]byte, 0, 192)
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\n"...)
	for k, vs := range hdr {
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			for i := 0; i < len(v); i++ {
				if c := v[i]; c == '\r' || c == '\n' {
					b = append(b, ' ')
				} else {
					b = append(b, c)
				}
			}
			b = append(b, "\r\n"...)
		}
	}
	return append(b, "\r\n"...)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (h *hijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }
