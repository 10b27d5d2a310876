package sessions

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionhub/sessionhub/internal/groupcommit"
)

// hotBatch is the group commit of the request path's Redis work: every
// session read (HGETALL) and slide (the touch script) that arrives while a
// round trip is in flight leaves in the next pipeline, together, so N
// concurrent requests cost one write(2) and one read(2) on the Redis
// connection instead of 2N of each. A lone request runs its own pipeline
// at once on its own goroutine: no timer, no added latency on an idle
// server. Each member gets its own answer: a member whose command fails
// (a corrupt hash, a missing script) fails alone.
//
// Every slide still reaches Redis (SECURITY.md 11: Redis TTL per request)
// and the request waits for it: batching only shares the round trip.
type hotBatch struct {
	r     *Redis
	group *groupcommit.Group[*hotOp]
	ops   sync.Pool

	// conn is the one connection a single-node client's rounds use, held
	// outside the pool: a pooled pipeline pays a checkout with a health
	// check (a recvfrom syscall) every time. Rounds never overlap, so it
	// needs no lock; a network failure drops it and the next round takes
	// a fresh one. nil for a cluster client (rounds use its pipelines).
	single *redis.Client
	conn   *redis.Conn
}

// maxBatch bounds one pipeline; the rest waits for the next round.
const maxBatch = 256

type hotOp struct {
	ctx context.Context
	// get: an HGETALL of id; otherwise a touch of t with ttlMS.
	get   bool
	id    string
	t     Touch
	ttlMS int64

	sess *Session
	err  error
	done chan struct{} // one send when answered

	cmd redis.Cmder // the op's command in the current round
}

func newHotBatch(r *Redis) *hotBatch {
	b := &hotBatch{r: r}
	b.single, _ = r.rdb.(*redis.Client)
	b.ops.New = func() any { return &hotOp{done: make(chan struct{}, 1)} }
	// Yield: without it a round rarely waits for anything, Redis often
	// answering before the next request runs. A member whose request gave
	// up (Redis slow or down) is answered with its own error and not sent:
	// a recovering Redis works only for requests still waiting.
	b.group = groupcommit.New(groupcommit.Config[*hotOp]{
		Max: maxBatch, Yield: true, Commit: b.round,
		Context: func(op *hotOp) context.Context { return op.ctx },
		Abandon: func(op *hotOp, err error) { op.err = err; op.done <- struct{}{} },
	})
	return b
}

func (b *hotBatch) newOp(ctx context.Context) *hotOp {
	op := b.ops.Get().(*hotOp)
	op.ctx = ctx
	return op
}

// do runs op in the next round and waits for its answer or ctx. An op
// abandoned on ctx is answered later into its own channel and never reused.
func (b *hotBatch) do(op *hotOp) (*Session, error) {
	if b.group.Add(op.ctx, op) {
		<-op.done
	} else {
		select {
		case <-op.done:
		case <-op.ctx.Done():
			return nil, op.ctx.Err()
		}
	}
	sess, err := op.sess, op.err
	*op = hotOp{done: op.done}
	b.ops.Put(op)
	return sess, err
}

// roundContext bounds a round by the latest deadline of its members (the
// Store gives each one HotTimeout), never by one member's cancellation: a
// request that gives up must not fail the others.
func roundContext(ops []*hotOp) (context.Context, context.CancelFunc) {
	var last time.Time
	for _, op := range ops {
		d, ok := op.ctx.Deadline()
		if !ok {
			return context.WithCancel(context.WithoutCancel(op.ctx))
		}
		if d.After(last) {
			last = d
		}
	}
	return context.WithDeadline(context.WithoutCancel(ops[0].ctx), last)
}

// round sends every op in one pipeline (scripts by SHA, then by body for
// the members Redis lacks the script for) and answers each op.
func (b *hotBatch) round(_ context.Context, ops []*hotOp) func() {
	ctx, cancel := roundContext(ops)
	defer cancel()
	// The pipeline's error is its first failing command's: a member's
	// NOSCRIPT is found by its own command, whatever failed before it.
	if err := b.pipelined(ctx, ops, true); err != nil {
		var again []*hotOp
		for _, op := range ops {
			if !op.get && op.cmd != nil && redis.HasErrorPrefix(op.cmd.Err(), "NOSCRIPT") {
				again = append(again, op)
			}
		}
		if len(again) > 0 {
			_ = b.pipelined(ctx, again, false)
		}
	}
	for _, op := range ops {
		op.sess, op.err = b.answer(op)
		op.cmd = nil
		op.done <- struct{}{}
	}
	return nil
}

// pipelined sends ops' commands in one pipeline on the round's connection.
func (b *hotBatch) pipelined(ctx context.Context, ops []*hotOp, bySHA bool) error {
	fn := func(p redis.Pipeliner) error {
		b.fill(ctx, p, ops, bySHA)
		return nil
	}
	if b.single == nil {
		_, err := b.r.rdb.Pipelined(ctx, fn)
		return err
	}
	var reply redis.Error
	for attempt := 0; ; attempt++ {
		if b.conn == nil {
			b.conn = b.single.Conn()
		}
		_, err := b.conn.Pipelined(ctx, fn)
		if err == nil || errors.As(err, &reply) {
			return err
		}
		// Not an answer from Redis: the connection may be broken (a
		// restarted Redis) or hold unread replies. Drop it and, once,
		// retry on a fresh one, as the pool's health check on checkout
		// would have done; every command of a round is idempotent.
		_ = b.conn.Close()
		b.conn = nil
		if attempt > 0 || ctx.Err() != nil {
			return err
		}
	}
}

// fill queues the ops' commands on p. The touches' expiry-set updates go
// in one ZADD XX GT (never re-adding a member Delete removed, never moving
// a score backwards), sent only when some op is a touch.
func (b *hotBatch) fill(ctx context.Context, p redis.Pipeliner, ops []*hotOp, bySHA bool) {
	r := b.r
	var zs []redis.Z
	for _, op := range ops {
		key := r.sessKey(op.id)
		if op.get {
			op.cmd = p.HGetAll(ctx, key)
			continue
		}
		keys := []string{key}
		args := []any{micros(op.t.LastSeenAt), micros(op.t.ExpiresAt), micros(op.t.SyncedAt), op.ttlMS}
		if bySHA {
			op.cmd = touchScript.EvalSha(ctx, p, keys, args...)
		} else {
			op.cmd = touchScript.Eval(ctx, p, keys, args...)
		}
		zs = append(zs, redis.Z{Score: float64(unixMicro(op.t.ExpiresAt)), Member: op.id})
	}
	if len(zs) > 0 {
		p.ZAddArgs(ctx, r.expKey(), redis.ZAddArgs{XX: true, GT: true, Members: zs})
	}
}

// answer reads op's own command: its error is this op's alone.
func (b *hotBatch) answer(op *hotOp) (*Session, error) {
	if op.get {
		c := op.cmd.(*redis.MapStringStringCmd)
		m, err := c.Result()
		if err != nil {
			return nil, b.r.wrap("get", err)
		}
		if len(m) == 0 {
			return nil, ErrNotFound
		}
		s, err := decodeSession(op.id, m)
		if err != nil {
			return nil, b.r.wrap("get", err)
		}
		return s, nil
	}
	n, err := op.cmd.(*redis.Cmd).Int64()
	switch {
	case err != nil:
		return nil, b.r.wrap("touch", err)
	case n == 0:
		return nil, ErrNotFound
	}
	return nil, nil
}
