package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"time"
)

// Pool spreads sockets over workers: in-process when they fit under one
// process's file limit, otherwise child processes.
type Pool struct {
	workers []*workerHandle
	onClose func(sid string, code int, at, seen time.Time)
}

type workerHandle struct {
	enc     *json.Encoder
	replies chan event
	cmd     *exec.Cmd
	done    chan struct{}
}

// PoolConfig says how to spread sockets.
type PoolConfig struct {
	Sockets    int      // how many sockets the run will hold in all
	PerProcess int      // sockets per worker process; default 15,000 (the file limit here is 20,000)
	WorkerCmd  []string // argv that starts a child worker; nil: in-process only
	// OnClose is called, from any goroutine, when a socket closes: at is
	// when the close frame reached the socket, seen when the reader had
	// finished the close handshake.
	OnClose func(sid string, code int, at, seen time.Time)
}

// NewPool starts enough workers for cfg.Sockets.
func NewPool(ctx context.Context, cfg PoolConfig) (*Pool, error) {
	if cfg.PerProcess <= 0 {
		cfg.PerProcess = 15000
	}
	if err := checkPerProcess(cfg.PerProcess, cfg.Sockets); err != nil {
		return nil, err
	}
	p := &Pool{onClose: cfg.OnClose}
	n := max(1, (cfg.Sockets+cfg.PerProcess-1)/cfg.PerProcess)
	if n > 1 && cfg.WorkerCmd == nil {
		return nil, fmt.Errorf("%d sockets need %d worker processes but no worker command was given", cfg.Sockets, n)
	}
	for i := 0; i < n; i++ {
		var h *workerHandle
		var err error
		if n == 1 {
			h = p.startInProcess(ctx)
		} else {
			h, err = p.startChild(ctx, cfg.WorkerCmd)
		}
		if err != nil {
			p.Close()
			return nil, err
		}
		p.workers = append(p.workers, h)
	}
	return p, nil
}

func (p *Pool) startInProcess(ctx context.Context) *workerHandle {
	cmdR, cmdW := io.Pipe()
	evR, evW := io.Pipe()
	h := &workerHandle{enc: json.NewEncoder(cmdW), replies: make(chan event, 16), done: make(chan struct{})}
	go func() {
		err := RunWorker(ctx, cmdR, evW)
		evW.CloseWithError(err)
	}()
	go p.readEvents(h, evR)
	return h
}

func (p *Pool) startChild(ctx context.Context, argv []string) (*workerHandle, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %v: %w", argv, err)
	}
	h := &workerHandle{enc: json.NewEncoder(in), replies: make(chan event, 16), cmd: cmd, done: make(chan struct{})}
	go p.readEvents(h, out)
	return h, nil
}

func (p *Pool) readEvents(h *workerHandle, r io.Reader) {
	defer close(h.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		if e.Op == "closed" {
			if p.onClose != nil {
				p.onClose(e.SessionID, e.Code, time.Unix(0, e.At), time.Unix(0, max(e.Seen, e.At)))
			}
			continue
		}
		h.replies <- e
	}
}

func (h *workerHandle) call(c command) (event, error) {
	if err := h.enc.Encode(c); err != nil {
		return event{}, fmt.Errorf("worker: %w", err)
	}
	select {
	case e := <-h.replies:
		return e, nil
	case <-h.done:
		return event{}, errors.New("worker exited")
	}
}

// OpenResult sums what the workers opened.
type OpenResult struct {
	OK, Failed int
	Errors     []string
	Handshake  Durations
	Elapsed    time.Duration
}

// Open opens conns, split evenly over the workers, concurrency at a time in
// each, from `sources` loopback source addresses.
func (p *Pool) Open(conns []Conn, concurrency, sources int) (OpenResult, error) {
	start := time.Now()
	var res OpenResult
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	per := (len(conns) + len(p.workers) - 1) / len(p.workers)
	for i, h := range p.workers {
		lo, hi := min(i*per, len(conns)), min((i+1)*per, len(conns))
		if lo == hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := h.call(command{Op: "open", Conns: conns[lo:hi], Concurrency: concurrency, Sources: sources})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				firstErr = err
				return
			}
			res.OK += e.OK
			res.Failed += e.Failed
			res.Errors = append(res.Errors, e.Errors...)
			for _, d := range e.Handshake {
				res.Handshake = append(res.Handshake, time.Duration(d))
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	return res, firstErr
}

// Stats is what the workers observed since the last call.
type Stats struct {
	Open     int
	Messages int64
	Latency  Durations
	Codes    map[string]int
}

// Stats collects and resets the workers' delivery counters.
func (p *Pool) Stats() (Stats, error) {
	s := Stats{Codes: map[string]int{}}
	for _, h := range p.workers {
		e, err := h.call(command{Op: "stats"})
		if err != nil {
			return s, err
		}
		s.Open += e.Open
		s.Messages += e.Messages
		for _, l := range e.Latency {
			s.Latency = append(s.Latency, time.Duration(l))
		}
		for k, v := range e.Codes {
			s.Codes[k] += v
		}
	}
	return s, nil
}

// Close closes every socket and stops the workers.
func (p *Pool) Close() {
	for _, h := range p.workers {
		_, _ = h.call(command{Op: "closeall"})
		if h.cmd != nil {
			_ = h.cmd.Wait()
		}
	}
	p.workers = nil
}
