package hub

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"sync"
	"syscall"
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
	// owed are bytes that must leave before anything else, even after a
	// close frame: the 101 response, held back so that it leaves in the
	// same write as the welcome frame (one syscall and one TCP segment less
	// per connect), or the rest of a frame tryWrite left half written.
	owed []byte

	// raw and rawWriteFn serve tryWrite: one non-blocking write(2) with no
	// allocation (rawWriteFn is bound once; wbuf, wn, werr carry its
	// argument and results, under wmu).
	raw        syscall.RawConn
	rawWriteFn func(fd uintptr) bool
	wbuf       []byte
	wn         int
	werr       error
}

// tryWrite writes p with one non-blocking syscall from the calling
// goroutine and returns how much the kernel took; -1 when it could not try
// (another write in progress, the preamble still pending, no raw access),
// so that the caller hands the frame to a writer goroutine. It never
// waits: a full socket buffer leaves the rest owed, for the writer. isClose
// says p ends with the close frame, after which nothing is written; stable
// says p outlives the call (otherwise an owed rest is copied).
func (s *sockConn) tryWrite(p []byte, isClose, stable bool) (int, error) {
	if s.raw == nil || !s.wmu.TryLock() {
		return -1, nil
	}
	defer s.wmu.Unlock()
	if s.closeSent {
		return len(p), nil
	}
	if s.owed != nil {
		return -1, nil
	}
	// The write does not wait, but the poller refuses any write past the
	// deadline: keep it ahead like every other write.
	s.refreshDeadline()
	s.wbuf, s.wn, s.werr = p, 0, nil
	err := s.raw.Write(s.rawWriteFn)
	s.wbuf = nil
	if err == nil {
		err = s.werr
	}
	if err != nil {
		return 0, err
	}
	if s.wn < len(p) {
		s.owed = p[s.wn:] // the caller has a writer flush it
		if !stable {
			s.owed = bytes.Clone(s.owed)
		}
	}
	if isClose {
		s.closeSent = true
	}
	return s.wn, nil
}

func (s *sockConn) rawWrite(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), s.wbuf)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			s.wn = 0
		case err != nil:
			s.werr = err
		default:
			s.wn = n
		}
		return true // never wait for the socket to become writable
	}
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
		return len(p), s.flushOwed()
	}
	if len(p) > 0 && p[0]&0x0f == 0x8 {
		s.closeSent = true
	}
	s.refreshDeadline()
	if s.owed != nil {
		if _, err := s.writeBuffers([][]byte{p}); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return s.Conn.Write(p)
}

// writeBuffers writes frames after any owed bytes. wmu is held.
func (s *sockConn) writeBuffers(frames [][]byte) (int64, error) {
	if s.owed != nil {
		frames = append([][]byte{s.owed}, frames...)
		s.owed = nil
	}
	switch len(frames) {
	case 0:
		return 0, nil
	case 1:
		n, err := s.Conn.Write(frames[0]) // the common case allocates nothing
		return int64(n), err
	}
	bufs := net.Buffers(frames)
	return bufs.WriteTo(s.Conn)
}

// flushOwed writes what is owed after a close frame. wmu is held.
func (s *sockConn) flushOwed() error {
	if s.owed == nil {
		return nil
	}
	s.refreshDeadline()
	_, err := s.Conn.Write(s.owed)
	s.owed = nil
	return err
}

// writeFrames writes a batch of complete frames (after any owed bytes) in
// one writev. endsInClose says the batch's last frame is a close frame.
// The frames may be shared with other sockets: their bytes are never
// modified (the slice headers in frames are).
func (s *sockConn) writeFrames(frames [][]byte, endsInClose bool) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closeSent {
		return s.flushOwed()
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
// sockConn's owed bytes, written together with the first frame.
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
	if sys, ok := nc.(syscall.Conn); ok {
		if raw, err := sys.SyscallConn(); err == nil {
			sc.raw = raw
			sc.rawWriteFn = sc.rawWrite
		}
	}
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		sc.pending = bytes.Clone(b)
	}
	if h.upgraded {
		sc.owed = switchingProtocols(h.ResponseWriter.Header())
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
