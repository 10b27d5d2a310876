package groupcommit

import (
	"context"
	"math"
	"runtime"
	"slices"
	"sync"
)

// Config says how a Group commits; only Commit is required.
type Config[T comparable] struct {
	Max int // requests per round at most (0: no bound); the rest wait
	// Commit sends one round and answers its requests, with Run's context
	// (a background one for the final flush), the caller's for a request
	// committed alone, or a background one. It may return after, the part
	// of the round that must not hold up the next: the next round starts
	// on another goroutine before after runs. batch lives until the round
	// ends.
	Commit func(ctx context.Context, batch []T) (after func())
	// Yield: a led round calls runtime.Gosched before it takes the queue,
	// so that the callers already runnable queue in time to go in it.
	Yield bool
	// Context, when set, gives a request's context: a request whose context
	// has ended when its round is taken is answered by Abandon, not sent.
	Context func(T) context.Context
	Abandon func(T, error)
	// Owned: Run's goroutine runs every round. While Run is not running,
	// each request is committed alone on its caller's goroutine.
	Owned bool
}

// Group commits requests of type T (a pointer, in practice) in rounds, one
// at a time. Unless Owned, the caller that finds it idle leads a round and
// a drainer goroutine runs those formed meanwhile. Safe for concurrent use.
type Group[T comparable] struct {
	cfg     Config[T]
	kick    chan struct{} // wakes Run
	mu      sync.Mutex
	busy    bool // a led round is running or about to: Add queues
	running bool // Run is running: Add queues
	queue   []T
}

// New returns an idle Group.
func New[T comparable](cfg Config[T]) *Group[T] {
	if cfg.Max <= 0 {
		cfg.Max = math.MaxInt
	}
	return &Group[T]{cfg: cfg, kick: make(chan struct{}, 1)}
}

// Add hands x over and reports whether x's round has run, after included
// (the caller led it or committed x alone), or x waits for another
// goroutine's round. ctx is for a request committed alone.
func (g *Group[T]) Add(ctx context.Context, x T) bool {
	g.mu.Lock()
	if g.cfg.Owned && !g.running {
		g.mu.Unlock()
		g.commit(ctx, []T{x})
		return true
	}
	g.queue = append(g.queue, x)
	lead := !g.cfg.Owned && !g.busy // then x is first: in the round led here
	g.busy = g.busy || lead
	g.mu.Unlock()
	switch {
	case lead:
		g.lead(false)
	case g.cfg.Owned:
		g.wake()
	}
	return lead
}

// Withdraw takes x out of the queue and reports true if no round took it.
func (g *Group[T]) Withdraw(x T) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if i := slices.Index(g.queue, x); i >= 0 {
		g.queue = slices.Delete(g.queue, i, i+1)
		return true
	}
	return false
}

// Len is the number of requests waiting for a round.
func (g *Group[T]) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

// Idle reports that no led round runs and no request waits.
func (g *Group[T]) Idle() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.busy && len(g.queue) == 0
}

// Hold, for tests, makes an idle led Group act as if a round were in flight
// until release, which ends it as a round's end does.
func (g *Group[T]) Hold() (release func()) {
	g.mu.Lock()
	g.busy = true
	g.mu.Unlock()
	return func() { g.lead(false) }
}

// lead runs one round on a caller's goroutine, rounds until the queue is
// empty on a drainer. After its round, a caller, or a drainer whose round
// has an after part, starts a drainer for what is queued and returns.
func (g *Group[T]) lead(drainer bool) {
	var batch []T
	for {
		if g.cfg.Yield {
			runtime.Gosched()
		}
		g.mu.Lock()
		batch = g.take(batch)
		g.busy = len(batch) > 0
		g.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		after := g.round(context.Background(), batch)
		if drainer && after == nil {
			clear(batch)
			continue
		}
		g.mu.Lock()
		g.busy = len(g.queue) > 0
		more := g.busy
		g.mu.Unlock()
		if more {
			go g.lead(true)
		}
		if after != nil {
			after()
		}
		return
	}
}

// Run runs an Owned Group's rounds until ctx ends, then commits what is
// queued and returns.
func (g *Group[T]) Run(ctx context.Context) {
	g.mu.Lock()
	g.running = true
	g.mu.Unlock()
	var batch []T
	for {
		select {
		case <-ctx.Done():
		case <-g.kick:
		}
		stopping := ctx.Err() != nil
		g.mu.Lock()
		g.running = !stopping
		batch = g.take(batch)
		more := len(g.queue) > 0
		g.mu.Unlock()
		if len(batch) > 0 {
			rctx := ctx
			if stopping {
				rctx = context.Background() // the final flush outlives Run
			}
			g.commit(rctx, batch)
			clear(batch)
		}
		switch {
		case more:
			g.wake()
		case stopping:
			return
		}
	}
}

func (g *Group[T]) wake() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// take moves up to Max queued requests into batch, under g.mu.
func (g *Group[T]) take(batch []T) []T {
	n := min(len(g.queue), g.cfg.Max)
	batch = append(batch[:0], g.queue[:n]...)
	rest := copy(g.queue, g.queue[n:])
	clear(g.queue[rest:])
	g.queue = g.queue[:rest]
	return batch
}

// commit runs a whole round, after included.
func (g *Group[T]) commit(ctx context.Context, batch []T) {
	if after := g.round(ctx, batch); after != nil {
		after()
	}
}

// round answers batch's abandoned requests and commits the others.
func (g *Group[T]) round(ctx context.Context, batch []T) (after func()) {
	if g.cfg.Context != nil {
		batch = slices.DeleteFunc(batch, func(x T) bool {
			err := g.cfg.Context(x).Err()
			if err != nil {
				g.cfg.Abandon(x, err)
			}
			return err != nil
		})
		if len(batch) == 0 {
			return nil
		}
	}
	return g.cfg.Commit(ctx, batch)
}
