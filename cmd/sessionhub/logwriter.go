package main

import (
	"io"
	"sync"
)

// logWriter takes log lines off the request path: Write copies the line
// into a buffer and returns, and one goroutine writes whatever has
// accumulated in a single write(2). Under load that is one syscall for
// many access lines instead of one per request, and a response never waits
// on the log file; on an idle server a line is written as soon as the
// writer goroutine runs (no timer). Lines keep their order. Close writes
// what is left and stops the goroutine: serve calls it last.
//
// When the sink falls behind by more than maxLogBacklog bytes, Write waits
// for it rather than buffering without bound.
type logWriter struct {
	w io.Writer

	mu     sync.Mutex
	cond   *sync.Cond // signalled when the writer takes buf, or stops
	buf    []byte     // pending lines
	closed bool
	kick   chan struct{}
	done   chan struct{}
}

const maxLogBacklog = 1 << 20

func newLogWriter(w io.Writer) *logWriter {
	l := &logWriter{w: w, kick: make(chan struct{}, 1), done: make(chan struct{})}
	l.cond = sync.NewCond(&l.mu)
	go l.run()
	return l
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	for len(l.buf) > maxLogBacklog && !l.closed {
		l.cond.Wait()
	}
	if l.closed {
		l.mu.Unlock()
		<-l.done // the last lines first, then this one straight through
		return l.w.Write(p)
	}
	l.buf = append(l.buf, p...)
	select { // under mu: Close cannot have closed kick
	case l.kick <- struct{}{}:
	default:
	}
	l.mu.Unlock()
	return len(p), nil
}

func (l *logWriter) run() {
	defer close(l.done)
	var out []byte
	for {
		_, ok := <-l.kick
		l.mu.Lock()
		out, l.buf = l.buf, out[:0]
		l.cond.Broadcast()
		l.mu.Unlock()
		if len(out) > 0 {
			_, _ = l.w.Write(out)
		}
		if cap(out) > 2*maxLogBacklog {
			out = nil // a burst left it huge
		}
		if !ok {
			return
		}
	}
}

// Close writes the pending lines and stops the goroutine; later writes go
// straight to the sink.
func (l *logWriter) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	close(l.kick)
	l.cond.Broadcast()
	l.mu.Unlock()
	<-l.done
}
