package hub

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// Flusher tuning, each with why.
const (
	// flushGather is the most bytes of one socket's queued frames a flusher
	// copies into one write; a bigger backlog is a slow reader, left to the
	// socket's own writer goroutine, which may block.
	flushGather = 16 << 10
	// flushTake is how many dirty sockets a flusher takes per lock.
	flushTake = 64
)

// flusher writes the sockets that have frames queued, from a few
// goroutines (one per CPU) instead of one goroutine per socket: a fan-out
// only appends the shared frame to each queue and marks the socket dirty.
// A flusher writes a socket's whole queue with one non-blocking write, so
// frames that arrive while it is busy elsewhere coalesce into the next
// write of that socket. A socket whose kernel buffer is full is handed to
// a writer goroutine of its own (conn.writeLoop), which may block; the
// flushers never do. Until Run starts them (and after it stops), enqueue
// falls back to those writer goroutines.
type flusher struct {
	mu      sync.Mutex
	cond    *sync.Cond
	running int
	stopped bool
	dirty   []*conn
	busy    int // flushers writing a batch taken off dirty
}

// idle reports whether nothing is dirty or being flushed (benchmarks).
func (f *flusher) idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.dirty) == 0 && f.busy == 0
}

func newFlusher() *flusher {
	f := &flusher{}
	f.cond = sync.NewCond(&f.mu)
	return f
}

// push marks c dirty; false means no flusher runs (start a writer).
func (f *flusher) push(c *conn) bool {
	f.mu.Lock()
	if f.running == 0 || f.stopped {
		f.mu.Unlock()
		return false
	}
	f.dirty = append(f.dirty, c)
	if len(f.dirty) == 1 {
		f.cond.Signal()
	}
	f.mu.Unlock()
	return true
}

// run starts one flusher per CPU and returns when ctx ends and they are
// done; sockets still dirty then get writer goroutines.
func (f *flusher) run(ctx context.Context) {
	n := runtime.GOMAXPROCS(0)
	f.mu.Lock()
	f.running, f.stopped = n, false
	f.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		f.mu.Lock()
		f.stopped = true
		f.cond.Broadcast()
		f.mu.Unlock()
	})
	defer stop()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() { defer wg.Done(); f.loop() }()
	}
	wg.Wait()
	f.mu.Lock()
	left := f.dirty
	f.dirty, f.running = nil, 0
	f.mu.Unlock()
	for _, c := range left {
		c.startWriter()
	}
}

func (f *flusher) loop() {
	var mine []*conn
	var scratch []byte
	for {
		f.mu.Lock()
		if len(mine) > 0 {
			clear(mine)
			mine = mine[:0]
			f.busy--
		}
		for len(f.dirty) == 0 && !f.stopped {
			f.cond.Wait()
		}
		if f.stopped {
			f.mu.Unlock()
			return
		}
		k := min(len(f.dirty), flushTake)
		mine = append(mine[:0], f.dirty[len(f.dirty)-k:]...)
		clear(f.dirty[len(f.dirty)-k:])
		f.dirty = f.dirty[:len(f.dirty)-k]
		f.busy++
		if len(f.dirty) > 0 {
			f.cond.Signal() // more work: wake another flusher
		}
		f.mu.Unlock()
		for _, c := range mine {
			scratch = c.flush(scratch)
		}
	}
}

// flush writes c's queue with one non-blocking write (see flusher); the
// caller holds c's writer role. scratch is the flusher's gather buffer.
func (c *conn) flush(scratch []byte) []byte {
	c.mu.Lock()
	batch := c.queue
	if len(batch) == 0 && !c.owed || c.dead {
		c.writing = false
		c.mu.Unlock()
		return scratch
	}
	if c.owed || c.queued > flushGather {
		c.mu.Unlock()
		c.startWriter() // a backlog: the socket's own writer may block
		return scratch
	}
	c.queue, c.spare = c.spare[:0], nil
	c.queued = 0
	endsInClose := c.closing
	revokeAt := c.revokeAt
	c.mu.Unlock()

	p, stable := batch[0], true
	if len(batch) > 1 {
		scratch = scratch[:0]
		for _, fr := range batch {
			scratch = append(scratch, fr...)
		}
		p, stable = scratch, false
	}
	n, err := c.sc.tryWrite(p, endsInClose, stable)
	if n == len(p) && endsInClose && revokeAt != 0 {
		c.h.m.revokeClose.Observe(float64(time.Now().UnixNano()-revokeAt) / 1e9)
	}
	c.mu.Lock()
	if n < 0 && err == nil {
		// Could not try (a control frame being written): the writer
		// goroutine takes the batch, ahead of anything queued since.
		c.queue = append(batch, c.queue...)
		c.queued += len(p)
		c.mu.Unlock()
		c.startWriter()
		return scratch
	}
	clear(batch)
	if cap(batch) <= maxSpare {
		c.spare = batch[:0]
	}
	switch {
	case err != nil:
		c.writing = false
		c.mu.Unlock()
		c.cut()
	case n < len(p):
		c.owed = true
		c.mu.Unlock()
		c.startWriter()
	case len(c.queue) > 0 && !c.dead:
		c.mu.Unlock()
		if !c.h.flush.push(c) { // more arrived meanwhile: next round
			c.startWriter()
		}
	default:
		c.writing = false
		c.mu.Unlock()
	}
	return scratch
}
