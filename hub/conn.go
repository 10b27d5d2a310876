package hub

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// Socket tuning, each with why.
const (
	// maxMessage is API.md's limit on a reassembled client message.
	maxMessage = 64 << 10
	// closeGrace is how long a peer has to answer our close frame before
	// the TCP connection is cut; short enough that a drain ends in time.
	closeGrace = 3 * time.Second
	// lingerRead bounds how long a socket whose message we refused is read
	// and discarded, so that closing it does not turn into a TCP reset that
	// would destroy our close frame before the peer reads it.
	lingerRead = 2 * time.Second
	// maxSpare caps the queue capacity kept between bursts.
	maxSpare = 64
)

// conn is one live socket. Its reader goroutine owns the read side and the
// per-socket protocol state; the writer goroutine exists only while frames
// are queued. mu guards the send queue and the closing state.
type conn struct {
	h     *Hub
	ws    *websocket.Conn
	sc    *sockConn
	id    uint64
	ident Identity
	from  string
	// handshake is when the handshake began (unix ns), for revocations
	// that raced it.
	handshake int64

	lastSeen atomic.Int64 // unix ns of the last frame read; set by the reader and pong callback
	pingedAt int64        // unix ns of the last ping; heartbeat loop only

	mu sync.Mutex
	// owed says an inline write left part of a frame with the sockConn,
	// for the writer to flush before the queue.
	owed     bool
	queue    [][]byte
	spare    [][]byte
	queued   int
	writing  bool
	closing  bool
	dead     bool
	reason   Disconnect
	revokeAt int64 // issued_at of the revocation closing it (unix ns), 0 if none
	timer    *time.Timer
	// writeFn is writeLoop bound once, so starting a writer allocates no
	// closure per burst.
	writeFn func()

	// Reader-goroutine state.
	channels map[string]struct{}
	rl       rateLimit
}

// enqueue queues a frame for the socket. It never blocks: a socket whose
// queue would pass SendQueueBytes is closed as a slow consumer. A socket
// that had nothing queued is marked dirty for the flushers (see flusher),
// so a fan-out starts no goroutine per socket.
func (c *conn) enqueue(frame []byte) bool {
	c.mu.Lock()
	if c.closing || c.dead {
		c.mu.Unlock()
		return false
	}
	if c.overflows(len(frame)) {
		c.mu.Unlock()
		c.closeWith(DisconnectSlowConsumer, 0)
		return false
	}
	c.queue = append(c.queue, frame)
	c.queued += len(frame)
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start && !c.h.flush.push(c) {
		c.startWriter()
	}
	return true
}

// overflows reports whether queueing n more bytes makes the socket a slow
// consumer. A socket with nothing queued takes any one frame: the largest
// message's frame is a little over 64 KiB (the smallest SendQueueBytes)
// and, alone, is not a client falling behind. c.mu is held.
func (c *conn) overflows(n int) bool {
	return c.queued > 0 && c.queued+n > c.h.cfg.SendQueueBytes
}

// offer is enqueue for a broadcast pass: a socket with nothing queued or
// being written gets frame written at once, from the calling goroutine,
// with one non-blocking write (writeInline); what the kernel does not take
// goes to a writer goroutine. So a fan-out to idle sockets locks, writes
// and settles each socket in one visit, with no hand-off to a flusher.
// frame is shared and never modified.
func (c *conn) offer(frame []byte) bool {
	c.mu.Lock()
	if c.writing || c.closing || c.dead || c.sc == nil {
		c.mu.Unlock()
		return c.enqueue(frame) // busy: behind what is queued (or refused)
	}
	if c.overflows(len(frame)) {
		c.mu.Unlock()
		return c.enqueue(frame) // closes it as a slow consumer, as ever
	}
	c.writing = true // not writing means nothing is queued or owed
	c.mu.Unlock()
	c.writeInline(frame, false, 0)
	return true
}

func (c *conn) startWriter() {
	c.h.writers.Add(1)
	go c.writeFn()
}

// writeInline writes a frame (a close frame, or a broadcast's frame from
// offer) from the calling goroutine, which holds the writer's role
// (c.writing was set by it). What the kernel does not take
// at once, and anything queued meanwhile, is left to a writer goroutine.
// isClose says frame is the close frame, revokeAt its revocation time.
func (c *conn) writeInline(frame []byte, isClose bool, revokeAt int64) {
	n, err := c.sc.tryWrite(frame, isClose, true)
	if err != nil {
		c.mu.Lock()
		c.writing = false
		c.mu.Unlock()
		c.cut()
		return
	}
	if n == len(frame) && isClose && revokeAt != 0 {
		c.h.m.revokeClose.Observe(float64(time.Now().UnixNano()-revokeAt) / 1e9)
	}
	c.mu.Lock()
	switch {
	case n < 0: // could not try: the writer takes the frame whole
		c.queue = append(c.queue, nil)
		copy(c.queue[1:], c.queue)
		c.queue[0] = frame
		c.queued += len(frame)
	case n < len(frame):
		c.owed = true
	}
	if len(c.queue) == 0 && !c.owed || c.dead {
		c.writing = false
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.startWriter()
}

// closeWith starts the close handshake with d: pending frames are dropped
// (kept for a drain, so clients get what was sent before), the close frame
// is sent (at once when nothing else is queued), and the connection is cut
// if the peer does not answer within closeGrace. The peer's reply is never
// waited for here: the reader sees it and finishes the socket. It reports
// whether this call started the close.
func (c *conn) closeWith(d Disconnect, revokeAt int64) bool {
	c.mu.Lock()
	if c.closing || c.dead {
		c.mu.Unlock()
		return false
	}
	c.closing = true
	c.reason = d
	c.revokeAt = revokeAt
	if d != DisconnectGoingAway {
		clear(c.queue)
		c.queue = c.queue[:0]
		c.queued = 0
	}
	c.timer = time.AfterFunc(closeGrace, c.cut)
	frame := d.closeFrame()
	if !c.writing && c.sc != nil {
		c.writing = true
		c.mu.Unlock()
		c.writeInline(frame, true, revokeAt)
		return true
	}
	c.queue = append(c.queue, frame)
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start {
		c.startWriter()
	}
	return true
}

// kill ends the socket at once, without a close frame (dead peer).
func (c *conn) kill(d Disconnect) {
	c.mu.Lock()
	if !c.closing {
		c.closing = true
		c.reason = d
	}
	c.mu.Unlock()
	c.cut()
}

// cut closes the TCP connection; the reader then finishes the socket.
func (c *conn) cut() { _ = c.ws.CloseNow() }

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// writeLoop drains the queue in batches (one writev each) and exits when
// the queue is empty, so an idle socket has no writer goroutine.
func (c *conn) writeLoop() {
	defer c.h.writers.Add(-1)
	for {
		c.mu.Lock()
		batch := c.queue
		if len(batch) == 0 && !c.owed || c.dead {
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.owed = false // writeFrames sends the sockConn's owed bytes first
		c.queue, c.spare = c.spare[:0], nil
		c.queued = 0
		endsInClose := c.closing
		revokeAt := c.revokeAt
		c.mu.Unlock()

		err := c.sc.writeFrames(batch, endsInClose)
		if endsInClose && err == nil && revokeAt != 0 {
			c.h.m.revokeClose.Observe(float64(time.Now().UnixNano()-revokeAt) / 1e9)
		}
		clear(batch)
		c.mu.Lock()
		if cap(batch) <= maxSpare {
			c.spare = batch[:0]
		}
		if err != nil {
			c.writing = false
			c.mu.Unlock()
			c.cut()
			return
		}
		c.mu.Unlock()
	}
}

// readLoop is the socket's one long-lived goroutine: it reads messages,
// dispatches them, and finishes the socket when the connection ends.
func (c *conn) readLoop() {
	defer c.h.live.Add(-1)
	defer c.finish()
	for {
		typ, r, err := c.ws.Reader(context.Background())
		if err != nil {
			return
		}
		c.lastSeen.Store(time.Now().UnixNano())
		if c.isClosing() {
			if _, err := io.Copy(io.Discard, r); err != nil {
				return
			}
			continue
		}
		if typ != websocket.MessageText {
			c.closeWith(DisconnectBinary, 0)
			c.linger()
			return
		}
		bp := c.h.bufs.Get().(*[]byte)
		n, err := readMessage(r, *bp)
		switch {
		case err != nil:
			c.h.bufs.Put(bp)
			return
		case n > maxMessage:
			c.h.bufs.Put(bp)
			c.closeWith(DisconnectTooBig, 0)
			c.linger()
			return
		case !utf8.Valid((*bp)[:n]):
			c.h.bufs.Put(bp)
			c.closeWith(DisconnectBadUTF8, 0)
			continue
		}
		c.h.m.msgIn.Inc()
		c.handle((*bp)[:n])
		c.h.bufs.Put(bp)
	}
}

// readMessage reads one message into buf (len maxMessage+1); n past
// maxMessage means the message is too big, and the rest is left unread.
func readMessage(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// linger discards what the peer still sends until it closes or lingerRead
// passes, after our close frame went out.
func (c *conn) linger() {
	_ = c.sc.SetReadDeadline(time.Now().Add(lingerRead))
	_, _ = io.Copy(io.Discard, c.sc)
}

// finish runs once, on the reader goroutine, when the socket is over.
func (c *conn) finish() {
	c.mu.Lock()
	c.dead = true
	reason := DisconnectClient
	if c.closing {
		reason = c.reason
	}
	t := c.timer
	clear(c.queue)
	c.queue, c.spare, c.queued = nil, nil, 0
	c.mu.Unlock()
	if t != nil {
		t.Stop()
	}
	c.cut()
	c.h.unregister(c)
	c.h.m.connections.Dec()
	c.h.m.disconnects[reason].Inc()
	// Queued for the ledger's next batched round trip, not waited for.
	if err := c.h.br.RemoveSocket(context.Background(), c.ident.UserID, member(c.h.cfg.NodeID, c.id)); err != nil {
		c.h.log.Debug("hub: ledger remove failed", "err", err)
	}
}

// rateLimit is a per-socket token bucket of client messages (GCRA: one
// theoretical arrival time, no allocation): a burst of ratePerSecond, then
// ratePerSecond a second. Unlike a fixed one-second window it has no
// boundary to straddle: 150 messages sent back to back are always over
// the limit, whichever second they start in.
type rateLimit struct {
	tat     int64 // theoretical arrival time, unix nanoseconds
	strikes int
}

// Rate limits, each with why.
const (
	ratePerSecond = 100 // API.md
	rateInterval  = int64(time.Second) / ratePerSecond
	// floodStrikes refused messages with no pause long enough to refill
	// the bucket is a client that ignores rate_limited errors: it is
	// closed with 1008.
	floodStrikes = 200
)

// allow counts one message; it returns false when over the limit and
// flood once the client keeps going.
func (r *rateLimit) allow(now time.Time) (ok, flood bool) {
	n := now.UnixNano()
	if r.tat <= n {
		// The bucket is full again: the client paused; forget strikes.
		r.tat, r.strikes = n, 0
	}
	if r.tat-n <= int64(time.Second)-rateInterval {
		r.tat += rateInterval
		return true, false
	}
	r.strikes++
	return false, r.strikes > floodStrikes
}
