package hub

import (
	"context"
	"sync"

	"github.com/sessionhub/sessionhub/internal/groupcommit"
)

// liveness batches the handshakes' session reads (group commit): the ids
// of every handshake that arrives while a Status call is in flight go in
// the next call, one round trip for all of them (Sessions.Status takes many
// ids for the price of one). A lone handshake pays one round trip as
// before; a connect storm pays a fraction of one per socket. Until Run
// runs its group (and after it stops) each read is its own call.
type liveness struct {
	status func(ctx context.Context, ids []string) ([]SessionState, error)
	group  *groupcommit.Group[*liveReq]
	reqs   sync.Pool
}

type liveReq struct {
	id    string
	state int // isAlive, errDead or errUnavailable
	done  chan struct{}
}

func newLiveness(status func(context.Context, []string) ([]SessionState, error)) *liveness {
	l := &liveness{status: status}
	l.group = groupcommit.New(groupcommit.Config[*liveReq]{Max: statusChunk, Owned: true, Commit: l.round})
	l.reqs.New = func() any { return &liveReq{done: make(chan struct{}, 1)} }
	return l
}

// check reports isAlive, errDead or errUnavailable for one session.
func (l *liveness) check(ctx context.Context, sessionID string) int {
	r := l.reqs.Get().(*liveReq)
	r.id = sessionID
	l.group.Add(ctx, r)
	<-r.done // every queued request is answered, within statusTimeout
	st := r.state
	r.id = ""
	l.reqs.Put(r)
	return st
}

// round reads the batch's sessions in one Status call and answers each.
func (l *liveness) round(ctx context.Context, batch []*liveReq) func() {
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
	return nil
}
