package groupcommit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sessionhub/sessionhub/internal/groupcommit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// req is one request: its round's outcome lands in err, then done closes.
type req struct {
	ctx      context.Context
	n        int
	err      error
	answered atomic.Int32
	done     chan struct{}
}

func newReq(ctx context.Context, n int) *req {
	return &req{ctx: ctx, n: n, done: make(chan struct{})}
}

func (r *req) answer(err error) {
	if r.answered.Add(1) != 1 {
		panic(fmt.Sprintf("request %d answered twice", r.n))
	}
	r.err = err
	close(r.done)
}

// committer records every round and can hold a round in flight until the
// test releases it, so that later requests queue behind it.
type committer struct {
	mu      sync.Mutex
	rounds  [][]int
	ctxs    []context.Context
	fail    map[int]error // round index → error for all its members
	holdAt  map[int]chan struct{}
	entered chan int
}

func newCommitter() *committer {
	return &committer{fail: map[int]error{}, holdAt: map[int]chan struct{}{}, entered: make(chan int, 100)}
}

// hold makes round i wait until the returned func is called.
func (c *committer) hold(i int) (release func()) {
	ch := make(chan struct{})
	c.mu.Lock()
	c.holdAt[i] = ch
	c.mu.Unlock()
	return func() { close(ch) }
}

func (c *committer) commit(ctx context.Context, batch []*req) func() {
	c.mu.Lock()
	i := len(c.rounds)
	ns := make([]int, len(batch))
	for j, r := range batch {
		ns[j] = r.n
	}
	c.rounds = append(c.rounds, ns)
	c.ctxs = append(c.ctxs, ctx)
	gate, err := c.holdAt[i], c.fail[i]
	c.mu.Unlock()
	c.entered <- i
	if gate != nil {
		<-gate
	}
	for _, r := range batch {
		r.answer(err)
	}
	return nil
}

func (c *committer) sizes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for _, r := range c.rounds {
		out = append(out, len(r))
	}
	return out
}

// queueAll starts one Add per request, each once the one before it is
// queued behind the round in flight, so that they queue in order.
func queueAll(g *groupcommit.Group[*req], rs []*req) {
	for _, r := range rs {
		n := g.Len()
		go g.Add(r.ctx, r)
		for g.Len() == n {
			time.Sleep(time.Millisecond)
		}
	}
}

// waitIdle waits for the last drainer to mark the group idle, which it
// does after its answers.
func waitIdle(g *groupcommit.Group[*req]) {
	for !g.Idle() {
		time.Sleep(time.Millisecond)
	}
}

func waitAll(rs []*req) {
	for _, r := range rs {
		<-r.done
	}
}

func reqs(ctx context.Context, from, n int) []*req {
	var rs []*req
	for i := range n {
		rs = append(rs, newReq(ctx, from+i))
	}
	return rs
}

// TestLedBatching: a lone request is committed on its caller's goroutine
// at once; the requests that arrive while its round is in flight go
// together in the next round, at most Max to a round, and the Group is
// idle again once they are answered.
func TestLedBatching(t *testing.T) {
	t.Parallel()
	c := newCommitter()
	g := groupcommit.New(groupcommit.Config[*req]{Max: 4, Commit: c.commit})
	ctx := context.Background()

	lone := newReq(ctx, 0)
	require.True(t, g.Add(ctx, lone), "an idle group's caller leads its round")
	require.NoError(t, lone.err)
	require.Equal(t, 0, <-c.entered)
	require.True(t, g.Idle())

	release := c.hold(1)
	first := newReq(ctx, 1)
	led := make(chan bool, 1)
	go func() { led <- g.Add(ctx, first) }()
	require.Equal(t, 1, <-c.entered)
	rest := reqs(ctx, 2, 10)
	queueAll(g, rest)
	release()
	require.True(t, <-led)
	waitAll(rest)
	require.Equal(t, []int{1, 1, 4, 4, 2}, c.sizes(), "the held round, then rounds of at most Max")
	c.mu.Lock()
	require.Equal(t, []int{2, 3, 4, 5}, c.rounds[2], "queue order kept")
	c.mu.Unlock()
	waitIdle(g)
}

// TestLedAfterOverlapsNextRound: the next round starts before the after
// part of the previous one runs, and the caller that led a round returns
// only once its after part is done.
func TestLedAfterOverlapsNextRound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	started := make(chan int, 10)
	var g *groupcommit.Group[*req]
	hold := make(chan struct{})
	round, nextStarted := 0, 0
	g = groupcommit.New(groupcommit.Config[*req]{Commit: func(_ context.Context, batch []*req) func() {
		round++ // rounds never overlap: no lock needed, -race checks it
		i := round
		started <- i
		if i == 1 {
			<-hold
		}
		return func() {
			if i == 1 {
				nextStarted = <-started // hangs if round 2 waits for this
			}
			for _, r := range batch {
				r.answer(nil)
			}
		}
	}})
	first := newReq(ctx, 0)
	led := make(chan bool, 1)
	go func() { led <- g.Add(ctx, first) }()
	require.Equal(t, 1, <-started)
	second := newReq(ctx, 1)
	queueAll(g, []*req{second})
	close(hold)
	require.True(t, <-led)
	require.EqualValues(t, 1, first.answered.Load(), "answered before Add returned")
	require.Equal(t, 2, nextStarted, "round 2 started before round 1's after part")
	<-second.done
}

// TestAbandonedAndWithdrawn: a request whose context ended before its
// round was taken is answered through Abandon and not sent; Withdraw takes
// a queued request out, and reports false once a round has taken it.
func TestAbandonedAndWithdrawn(t *testing.T) {
	t.Parallel()
	c := newCommitter()
	var abandoned []int
	g := groupcommit.New(groupcommit.Config[*req]{
		Commit:  c.commit,
		Context: func(r *req) context.Context { return r.ctx },
		Abandon: func(r *req, err error) { abandoned = append(abandoned, r.n); r.answer(err) },
	})
	ctx := context.Background()
	release := c.hold(0)
	first := newReq(ctx, 0)
	go g.Add(ctx, first)
	<-c.entered
	cctx, cancel := context.WithCancel(ctx)
	gone, kept, withdrawn := newReq(cctx, 1), newReq(ctx, 2), newReq(ctx, 3)
	queueAll(g, []*req{gone, kept, withdrawn})
	cancel()
	require.True(t, g.Withdraw(withdrawn))
	require.False(t, g.Withdraw(withdrawn), "only once")
	require.Equal(t, 2, g.Len())
	release()
	waitAll([]*req{first, gone, kept})
	require.Equal(t, 1, <-c.entered)
	require.False(t, g.Withdraw(kept), "taken by its round")
	require.ErrorIs(t, gone.err, context.Canceled)
	require.NoError(t, kept.err)
	require.Equal(t, []int{2}, c.rounds[1], "neither the abandoned nor the withdrawn one sent")
	require.Equal(t, []int{1}, abandoned)
	require.Zero(t, withdrawn.answered.Load())

	// A round whose every member gave up sends nothing.
	release = c.hold(2)
	go g.Add(ctx, newReq(ctx, 4))
	require.Equal(t, 2, <-c.entered)
	dead := reqs(cctx, 5, 3)
	queueAll(g, dead)
	release()
	waitAll(dead)
	for _, r := range dead {
		require.ErrorIs(t, r.err, context.Canceled)
	}
	require.Equal(t, []int{1, 1, 1}, c.sizes())
}

// TestErrorsStayInTheirRound: a round's error reaches each of its members
// and no request of another round.
func TestErrorsStayInTheirRound(t *testing.T) {
	t.Parallel()
	c := newCommitter()
	boom := errors.New("boom")
	c.fail[1] = boom
	g := groupcommit.New(groupcommit.Config[*req]{Commit: c.commit})
	ctx := context.Background()
	release := c.hold(0)
	first := newReq(ctx, 0)
	go g.Add(ctx, first)
	<-c.entered
	failing := reqs(ctx, 1, 5)
	queueAll(g, failing)
	release()
	waitAll(append(failing, first))
	require.NoError(t, first.err)
	for _, r := range failing {
		require.ErrorIs(t, r.err, boom)
	}
	next := newReq(ctx, 9)
	g.Add(ctx, next)
	require.NoError(t, next.err)
}

// TestOwnedRun: before Run each request is committed alone with its
// caller's context; while Run runs, requests queue and Run's goroutine
// commits them in rounds with Run's context; when Run's context ends, Run
// commits what is queued with a context that has not ended, returns, and
// requests are committed alone again.
func TestOwnedRun(t *testing.T) {
	t.Parallel()
	c := newCommitter()
	g := groupcommit.New(groupcommit.Config[*req]{Max: 3, Owned: true, Commit: c.commit})
	type key struct{}
	callerCtx := context.WithValue(context.Background(), key{}, "caller")

	alone := newReq(callerCtx, 0)
	require.True(t, g.Add(callerCtx, alone), "committed alone before Run")
	require.Equal(t, 0, <-c.entered)
	require.Equal(t, "caller", c.ctxs[0].Value(key{}))

	runCtx, stop := context.WithCancel(context.WithValue(context.Background(), key{}, "run"))
	ran := make(chan struct{})
	go func() { defer close(ran); g.Run(runCtx) }()
	for { // until Run marks itself running, requests are committed alone
		probe := newReq(callerCtx, -1)
		queued := !g.Add(callerCtx, probe)
		<-probe.done
		<-c.entered
		if queued {
			break
		}
	}
	held := len(c.sizes())
	release := c.hold(held)
	first := newReq(callerCtx, 1)
	require.False(t, g.Add(callerCtx, first), "queued for Run")
	require.Equal(t, held, <-c.entered)
	queued := reqs(callerCtx, 2, 7)
	queueAll(g, queued)
	release()
	waitAll(append(queued, first))
	require.Equal(t, []int{1, 3, 3, 1}, c.sizes()[held:], "the held round, then rounds of at most Max")
	require.Equal(t, "run", c.ctxs[held].Value(key{}))
	for range 3 {
		<-c.entered
	}

	// Stop with requests queued behind a held round: they are flushed.
	held = len(c.sizes())
	release = c.hold(held)
	blocker := newReq(callerCtx, 20)
	require.False(t, g.Add(callerCtx, blocker))
	require.Equal(t, held, <-c.entered)
	last := reqs(callerCtx, 21, 2)
	queueAll(g, last)
	stop()
	release()
	waitAll(append(last, blocker))
	<-ran
	require.Equal(t, held+1, <-c.entered)
	c.mu.Lock()
	require.Equal(t, []int{21, 22}, c.rounds[held+1], "queued requests flushed after Run's context ended")
	require.NoError(t, c.ctxs[held+1].Err(), "the final flush outlives Run's context")
	c.mu.Unlock()

	after := newReq(callerCtx, 30)
	require.True(t, g.Add(callerCtx, after), "committed alone after Run")
	require.Equal(t, held+2, <-c.entered)
	require.Equal(t, "caller", c.ctxs[held+2].Value(key{}))
}

// TestConcurrentAdds: many callers, some giving up, some withdrawing: each
// request is answered exactly once (answer panics on a second), committed
// or abandoned, and the Group ends idle. Run it with -race.
func TestConcurrentAdds(t *testing.T) {
	t.Parallel()
	for _, owned := range []bool{false, true} {
		t.Run(fmt.Sprintf("owned=%v", owned), func(t *testing.T) {
			t.Parallel()
			var committed, abandoned atomic.Int64
			g := groupcommit.New(groupcommit.Config[*req]{
				Max: 7, Yield: !owned, Owned: owned,
				Commit: func(_ context.Context, batch []*req) func() {
					committed.Add(int64(len(batch)))
					if owned {
						for _, r := range batch {
							r.answer(nil)
						}
						return nil
					}
					return func() {
						for _, r := range batch {
							r.answer(nil)
						}
					}
				},
				Context: func(r *req) context.Context { return r.ctx },
				Abandon: func(r *req, err error) { abandoned.Add(1); r.answer(err) },
			})
			runCtx, stop := context.WithCancel(context.Background())
			ran := make(chan struct{})
			if owned {
				go func() { defer close(ran); g.Run(runCtx) }()
			} else {
				close(ran)
			}
			var withdrawn atomic.Int64
			var wg sync.WaitGroup
			for i := range 64 {
				wg.Go(func() {
					for j := range 50 {
						ctx, cancel := context.WithCancel(context.Background())
						r := newReq(ctx, i*1000+j)
						if j%5 == 0 {
							cancel()
						}
						if !g.Add(ctx, r) && j%7 == 0 && g.Withdraw(r) {
							withdrawn.Add(1)
							cancel()
							continue
						}
						<-r.done
						cancel()
					}
				})
			}
			wg.Wait()
			stop()
			<-ran
			require.EqualValues(t, 64*50, committed.Load()+abandoned.Load()+withdrawn.Load())
			require.Zero(t, g.Len())
			waitIdle(g)
		})
	}
}
