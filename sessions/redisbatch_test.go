package sessions_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/internal/testenv"
	"github.com/sessionhub/sessionhub/sessions"
)

// gate holds the first pipeline a go-redis client sends until release is
// closed, and records the size of every pipeline, so a test can make later
// calls queue behind a round in flight and land in one batch.
type gate struct {
	first   atomic.Bool
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	sizes   []int
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (g *gate) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (g *gate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		g.mu.Lock()
		g.sizes = append(g.sizes, len(cmds))
		g.mu.Unlock()
		if g.first.CompareAndSwap(false, true) {
			close(g.entered)
			<-g.release
		}
		return next(ctx, cmds)
	}
}

func (g *gate) pipelines() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.sizes...)
}

// TestRedisBatchMembersAnsweredApart: reads and slides that queue behind a
// round in flight leave together in the next pipeline, and each member gets
// its own answer — a live session, ErrNotFound for a missing one, an
// unavailable error for a corrupt hash or a key of the wrong type, a slide
// of a live session, ErrNotFound for the slide of a missing one — without
// one member's failure touching the others.
func TestRedisBatchMembersAnsweredApart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	b := newRedisPostgresBundle(t, sessions.Config{}, rdb, prefix, testenv.Postgres(t))
	user := b.newUser(t)
	live1, _ := create(t, b, user)
	live2, _ := create(t, b, user)
	wrongType, corrupt := sessions.NewToken().ID, sessions.NewToken().ID
	require.NoError(t, rdb.Set(ctx, prefix+"sess:"+wrongType, "x", time.Minute).Err())
	require.NoError(t, rdb.HSet(ctx, prefix+"sess:"+corrupt, "uid", user).Err())
	require.NoError(t, rdb.Expire(ctx, prefix+"sess:"+corrupt, time.Minute).Err())
	missing := sessions.NewToken().ID
	hot := b.hot

	g := newGate()
	rdb.AddHook(g)
	// The first call's round is held in flight; everything after queues.
	firstDone := make(chan error, 1)
	go func() {
		_, err := hot.Get(ctx, live1.ID)
		firstDone <- err
	}()
	<-g.entered

	now := b.clock.Now()
	slide := func(id string) sessions.Touch {
		return sessions.Touch{ID: id, LastSeenAt: now.Add(time.Second), ExpiresAt: now.Add(time.Hour)}
	}
	type result struct {
		sess *sessions.Session
		err  error
	}
	calls := map[string]func() result{
		"get live1":     func() result { s, err := hot.Get(ctx, live1.ID); return result{s, err} },
		"get live2":     func() result { s, err := hot.Get(ctx, live2.ID); return result{s, err} },
		"get missing":   func() result { s, err := hot.Get(ctx, missing); return result{s, err} },
		"get wrongtype": func() result { s, err := hot.Get(ctx, wrongType); return result{s, err} },
		"get corrupt":   func() result { s, err := hot.Get(ctx, corrupt); return result{s, err} },
		"touch live2":   func() result { return result{nil, hot.Touch(ctx, slide(live2.ID), time.Hour)} },
		"touch missing": func() result { return result{nil, hot.Touch(ctx, slide(missing), time.Hour)} },
		"touch wrong":   func() result { return result{nil, hot.Touch(ctx, slide(wrongType), time.Hour)} },
	}
	var mu sync.Mutex
	got := map[string]result{}
	var wg sync.WaitGroup
	for name, call := range calls {
		wg.Go(func() {
			r := call()
			mu.Lock()
			got[name] = r
			mu.Unlock()
		})
	}
	// Let every call queue behind the held round, then release it.
	waitQueued(t, hot, len(calls))
	close(g.release)
	wg.Wait()
	require.NoError(t, <-firstDone)

	sizes := g.pipelines()
	require.Equal(t, 1, sizes[0], "the first call's own round")
	require.Len(t, sizes, 2, "every queued call in one more round: %v", sizes)
	require.Equal(t, len(calls)+1, sizes[1], "one command per member plus the expiry set's ZADD")

	require.NoError(t, got["get live1"].err)
	require.Equal(t, live1.ID, got["get live1"].sess.ID)
	require.NoError(t, got["get live2"].err)
	require.Equal(t, live2.ID, got["get live2"].sess.ID)
	require.Equal(t, live2.CSRFToken, got["get live2"].sess.CSRFToken)
	require.ErrorIs(t, got["get missing"].err, sessions.ErrNotFound)
	require.ErrorIs(t, got["get wrongtype"].err, sessions.ErrUnavailable)
	require.ErrorIs(t, got["get corrupt"].err, sessions.ErrUnavailable)
	require.NoError(t, got["touch live2"].err)
	require.ErrorIs(t, got["touch missing"].err, sessions.ErrNotFound)
	require.ErrorIs(t, got["touch wrong"].err, sessions.ErrUnavailable)

	// The slide landed; the missing session was not created by its slide.
	s, err := hot.Get(ctx, live2.ID)
	require.NoError(t, err)
	require.True(t, s.LastSeenAt.Equal(now.Add(time.Second)), "slid: %v", s.LastSeenAt)
	require.False(t, b.hotHas(t, missing))
	_, err = rdb.ZScore(ctx, prefix+"sess:exp", missing).Result()
	require.ErrorIs(t, err, redis.Nil, "ZADD XX never adds a missing member")
}

// TestRedisBatchAbandonedMember: a member whose context ends while its
// round is in flight returns the context's error at once; the round still
// answers the others.
func TestRedisBatchAbandonedMember(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	b := newRedisPostgresBundle(t, sessions.Config{}, rdb, prefix, testenv.Postgres(t))
	user := b.newUser(t)
	live, _ := create(t, b, user)
	g := newGate()
	rdb.AddHook(g)
	firstDone := make(chan error, 1)
	go func() {
		_, err := b.hot.Get(ctx, live.ID)
		firstDone <- err
	}()
	<-g.entered
	cctx, cancel := context.WithCancel(ctx)
	quit := make(chan error, 1)
	go func() {
		_, err := b.hot.Get(cctx, live.ID)
		quit <- err
	}()
	stay := make(chan error, 1)
	go func() {
		_, err := b.hot.Get(ctx, live.ID)
		stay <- err
	}()
	waitQueued(t, b.hot, 2)
	cancel()
	require.ErrorIs(t, <-quit, context.Canceled)
	close(g.release)
	require.NoError(t, <-firstDone)
	require.NoError(t, <-stay)
}

// TestBatchedSlideNeverRevives: authentications racing revocations, many
// per Redis round: once Revoke has returned, the session is gone from Redis
// and stays gone (a slide queued before the revocation finds no hash and
// writes nothing), and every later Authenticate refuses it.
func TestBatchedSlideNeverRevives(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	b := newRedisPostgresBundle(t, sessions.Config{}, rdb, prefix, testenv.Postgres(t))
	const n = 20
	type victim struct {
		s   *sessions.Session
		tok sessions.Token
	}
	var vs []victim
	for range n {
		s, tok := create(t, b, b.newUser(t))
		vs = append(vs, victim{s, tok})
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, v := range vs {
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					_, err := b.store.Authenticate(ctx, v.tok.String())
					if err != nil && !errors.Is(err, sessions.ErrNotFound) {
						t.Errorf("authenticate: %v", err)
						return
					}
				}
			})
		}
	}
	time.Sleep(20 * time.Millisecond)
	for _, v := range vs {
		_, err := b.store.Revoke(ctx, v.s.ID, sessions.Revocation{Reason: sessions.ReasonAdmin})
		require.NoError(t, err)
	}
	time.Sleep(50 * time.Millisecond) // slides queued before the revocations land
	close(stop)
	wg.Wait()
	for _, v := range vs {
		require.False(t, b.hotHas(t, v.s.ID), "revoked session %s back in Redis", v.s.ID)
		_, err := rdb.ZScore(ctx, prefix+"sess:exp", v.s.ID).Result()
		require.ErrorIs(t, err, redis.Nil, "revoked session %s back in the expiry set", v.s.ID)
		_, err = b.store.Authenticate(ctx, v.tok.String())
		require.ErrorIs(t, err, sessions.ErrNotFound)
	}
}

// waitQueued waits until n calls are queued behind the round in flight.
func waitQueued(t *testing.T, hot sessions.Hot, n int) {
	t.Helper()
	r := hot.(*sessions.Redis)
	deadline := time.Now().Add(10 * time.Second)
	for sessions.QueuedOps(r) < n {
		require.True(t, time.Now().Before(deadline), "only %d of %d calls queued", sessions.QueuedOps(r), n)
		time.Sleep(time.Millisecond)
	}
}
