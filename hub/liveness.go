package hub

import (
	"context"
	"sync"
)

// liveness batches the handshakes' session reads (group commit): the ids
// of every handshake that arrives while a Status call is in flight go in
// the next call, one round trip for all of them (Sessions.Status takes many
// ids for the price of one). A lone handshake pays one round trip as
// before; a connect storm pays a fraction of one per socket. Until loop
// runs (and after it stops) each read is its own call.
type liveness struct {
	status func(ctx context.Context, ids []string) ([]SessionState, error)

	mu      sync.Mutex
	running bool
	queue   []*liveReq
	kick    chan struct{}
	reqs    sync.Pool
}

type liveReq struct {
	id    string
	state int // isAlive, errDead or errUnavailable
	done  chan struct{}
}

func newLiveness(status func(context.Context, []string) ([]SessionState, error)) *liveness {
	l := &liveness{status: status, kick: make(chan struct{}, 1)}
	l.reqs.New = func() any { return &liveReq{done: make(chan struct{}, 1)} }
	return l
}

// check reports isAlive, errDead or errUnavailable for one session.
func (l *liveness) check(ctx context.Context, sessionID string) int {
	r := l.reqs.Get().(*liveReq)
	r.id = sessionID
	l.mu.Lock()
	if !l.running {
		l.mu.Unlock()
		l.round(ctx, []*liveReq{r})
	} else {
		l.queue = append(l.queue, r)
		l.mu.Unlock()
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	<-r.done // every queued request is answered, within statusTimeout
	st := r.state
	r.id = ""
	l.reqs.Put(r)
	return st
}

func (l *liveness) loop(ctx context.Context) {
	l.mu.Lock()
	l.running = true
	l.mu.Unlock()
	var batch []*liveReq
	for {
		select {
		case <-ctx.Done():
		case <-l.kick:
		}
		stopping := ctx.Err() != nil
		l.mu.Lock()
		if stopping {
			l.running = false
		}
		n := min(len(l.queue), statusChunk)
		batch = append(batch[:0], l.queue[:n]...)
		rest := copy(l.queue, l.queue[n:])
		clear(l.queue[rest:])
		l.queue = l.queue[:rest]
		l.mu.Unlock()
		if len(batch) > 0 {
			rctx := ctx
			if stopping {
				rctx = context.Background() // answer the last ones
			}
			l.round(rctx, batch)
			clear(batch)
		}
		switch {
		case rest > 0:
			select {
			case l.kick <- struct{}{}:
			default:
			}
		case stopping:
			return
		}
	}
}

// round reads the batch's sessions in one Status call and answers each.
func (l *liveness) round(ctx context.Context, batch []*liveReq) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	ids := make([]string, len(batch))
	for i, r := range batch {
		ids[i] = r.id
	}
	st, err := l.status(ctx, ids)
	for i, r := range batch {
		switch {
		case err != nil || len(st) != len(batch):
			r.state = errUnavailable
		case st[i] != SessionAlive:
			r.state = errDead
		default:
			r.state = isAlive
		}
		r.done <- struct{}{}
	}
}
