package sessions_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/internal/testenv"
	"github.com/sessionhub/sessionhub/sessions"
)

// gatedDurable is Memory as the durable backend, whose RevokeMany can be
// held (to let a group form behind it) or made to fail.
type gatedDurable struct {
	*sessions.Memory
	mu      sync.Mutex
	groups  [][]string
	entered chan struct{}
	gate    chan struct{} // nil: no wait
	fail    error         // returned by the next RevokeMany, then cleared
}

func (g *gatedDurable) RevokeMany(ctx context.Context, items []sessions.RevokeItem) ([]*sessions.Session, error) {
	g.mu.Lock()
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	g.groups = append(g.groups, ids)
	gate, fail := g.gate, g.fail
	g.gate, g.fail = nil, nil
	g.mu.Unlock()
	if gate != nil {
		g.entered <- struct{}{}
		<-gate
	}
	if fail != nil {
		return nil, fail
	}
	return g.Memory.RevokeMany(ctx, items)
}

func (g *gatedDurable) hold() chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate = make(chan struct{})
	return g.gate
}

func (g *gatedDurable) failNext(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fail = err
}

func (g *gatedDurable) groupSizes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	var n []int
	for _, ids := range g.groups {
		n = append(n, len(ids))
	}
	return n
}

type revokeResult struct {
	id   string
	sess *sessions.Session
	err  error
}

// revokeAll starts one Revoke per id and returns their results once the
// Store queued `queued` of them behind the statement in flight.
func revokeAll(t *testing.T, store *sessions.Store, ids []string, queued int, ctxs ...context.Context) <-chan revokeResult {
	t.Helper()
	out := make(chan revokeResult, len(ids))
	for i, id := range ids {
		ctx := context.Background()
		if i < len(ctxs) {
			ctx = ctxs[i]
		}
		go func() {
			s, err := store.Revoke(ctx, id, sessions.Revocation{Reason: sessions.ReasonAdmin, RequestID: "r-" + id})
			out <- revokeResult{id, s, err}
		}()
	}
	for store.QueuedRevocations() < queued {
		time.Sleep(time.Millisecond)
	}
	return out
}

func newGatedStore(t *testing.T) (*sessions.Store, *sessions.Memory, *gatedDurable) {
	clock := newFakeClock()
	mem := sessions.NewMemory(clock.Now)
	g := &gatedDurable{Memory: mem, entered: make(chan struct{}, 1)}
	store, err := sessions.New(sessions.Config{Now: clock.Now, Logger: discardLogger()}, mem, g, mem)
	require.NoError(t, err)
	startRun(t, store)
	return store, mem, g
}

func memEvents(t *testing.T, mem *sessions.Memory) func() map[string]int {
	var mu sync.Mutex
	got := map[string]int{}
	t.Cleanup(mem.Subscribe(func(e sessions.Event) {
		mu.Lock()
		got[e.SessionID+"/"+e.RequestID]++
		mu.Unlock()
	}))
	return func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for k, v := range got {
			out[k] = v
		}
		return out
	}
}

// TestRevokeGroupCommit: Revokes that arrive while a statement is in
// flight go out together in the next one; each caller gets its own
// session (or ErrNotFound for an unknown or already revoked id, or for the
// second of two calls on one id), and each revoked session gets its own
// event carrying its caller's request id, after its durable write.
func TestRevokeGroupCommit(t *testing.T) {
	t.Parallel()
	store, mem, g := newGatedStore(t)
	events := memEvents(t, mem)
	ctx := context.Background()
	user := newUUID()
	ids := createServiceSessions(t, store, user, 12)
	_, err := store.Revoke(ctx, ids[11], sessions.Revocation{Reason: sessions.ReasonLogout})
	require.NoError(t, err)

	gate := g.hold()
	first := revokeAll(t, store, ids[:1], 0)
	<-g.entered
	// Behind the held statement: ten live sessions, one of them twice, an
	// unknown id and an already revoked one.
	unknown := sessions.NewToken().ID
	group := append(append([]string{}, ids[1:11]...), ids[1], unknown, ids[11])
	rest := revokeAll(t, store, group, len(group))
	close(gate)

	r := <-first
	require.NoError(t, r.err)
	require.Equal(t, ids[0], r.sess.ID)
	okByID := map[string]int{}
	for range group {
		r := <-rest
		if r.err != nil {
			require.ErrorIs(t, r.err, sessions.ErrNotFound, r.id)
			continue
		}
		require.Equal(t, r.id, r.sess.ID)
		require.Equal(t, sessions.ReasonAdmin, r.sess.RevokeReason)
		okByID[r.id]++
	}
	require.Len(t, okByID, 10, "every live session revoked once")
	for _, id := range ids[1:11] {
		require.Equal(t, 1, okByID[id], id)
	}
	require.Equal(t, []int{1, 1, 12}, g.groupSizes(), "the earlier logout, the held one, then one statement for the whole group (the duplicate sent once)")

	got := events()
	for _, id := range ids[:11] {
		require.Equal(t, 1, got[id+"/r-"+id], "one event per revoked session, with its caller's request id")
		_, err := store.Lookup(ctx, id)
		require.ErrorIs(t, err, sessions.ErrNotFound)
		exp, err := mem.Expiries(ctx, []string{id})
		require.NoError(t, err)
		require.False(t, exp[0].OK, "hot copy deleted")
	}
	require.Len(t, got, 12, "the earlier logout's event, and none for the refused calls")
}

// TestRevokeGroupFailure: when the group's statement fails, every caller
// in it gets the error and nothing is announced; the group before it
// succeeded and the next one is unaffected. A caller whose context ends
// while it is still queued is withdrawn and told so; the others go on.
func TestRevokeGroupFailure(t *testing.T) {
	t.Parallel()
	store, mem, g := newGatedStore(t)
	events := memEvents(t, mem)
	ctx := context.Background()
	user := newUUID()
	ids := createServiceSessions(t, store, user, 8)

	gate := g.hold()
	first := revokeAll(t, store, ids[:1], 0)
	<-g.entered
	g.failNext(fmt.Errorf("boom: %w", sessions.ErrUnavailable))
	cctx, cancel := context.WithCancel(ctx)
	withdrawn := revokeAll(t, store, ids[1:2], 1, cctx)
	failing := revokeAll(t, store, ids[2:5], 4)
	cancel()
	w := <-withdrawn
	require.ErrorIs(t, w.err, context.Canceled, "withdrawn before its statement")
	close(gate)
	require.NoError(t, (<-first).err)
	for range 3 {
		r := <-failing
		require.ErrorIs(t, r.err, sessions.ErrUnavailable, "a failed commit never reports success")
		require.Nil(t, r.sess)
	}
	for _, id := range ids[1:5] {
		_, err := store.Lookup(ctx, id)
		require.NoError(t, err, "still live: nothing was revoked")
	}
	got := events()
	require.Equal(t, map[string]int{ids[0] + "/r-" + ids[0]: 1}, got)

	// The next group works.
	next := revokeAll(t, store, ids[5:], 0)
	for range 3 {
		require.NoError(t, (<-next).err)
	}
}

// TestRevokeGroupRedisDown: a group committed to Postgres while Redis is
// unreachable succeeds for every caller (Postgres has it, so it is
// durable), is refused on this node at once, and reaches Redis (hot
// deletes, then one event per session) once Redis is back.
func TestRevokeGroupRedisDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, direct, proxy := newOutageBundle(t)
	user := b.newUser(t)
	var ids []string
	var toks []sessions.Token
	for range 20 {
		s, tok := create(t, b, user)
		ids, toks = append(ids, s.ID), append(toks, tok)
	}
	events := subscribe(t, direct, outagePrefix+sessions.RevocationChannel)

	proxy.Down()
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = b.store.Revoke(ctx, id, sessions.Revocation{Reason: sessions.ReasonAdmin})
		}()
	}
	wg.Wait()
	for i, id := range ids {
		require.NoError(t, errs[i], "Postgres took the revocation")
		require.False(t, b.durableRow(t, id).RevokedAt.IsZero())
		_, err := b.store.Authenticate(ctx, toks[i].String())
		require.ErrorIs(t, err, sessions.ErrNotFound, "this node refuses it at once")
		require.EqualValues(t, 1, direct.Exists(ctx, outagePrefix+"sess:"+id).Val(), "Redis still holds the stale copy")
	}
	noEvent(t, events)

	proxy.Up()
	seen := map[string]bool{}
	for len(seen) < len(ids) {
		ev := nextEvent(t, events)
		require.Equal(t, "session", ev["kind"])
		seen[ev["session_id"].(string)] = true
		require.Zero(t, direct.Exists(ctx, outagePrefix+"sess:"+ev["session_id"].(string)).Val(), "the hot delete ran before the event")
	}
	for _, id := range ids {
		require.True(t, seen[id])
	}
	require.Empty(t, direct.SMembers(ctx, outagePrefix+"user:"+user+":sess").Val())
}

// TestRevokeManyPostgres: the durable group statement revokes the unrevoked
// ones among its items, each with its own reason and time, returns them,
// and leaves revoked and unknown ids alone.
func TestRevokeManyPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	pool := testenv.Postgres(t)
	b := newRedisPostgresBundle(t, sessions.Config{}, rdb, prefix, pool)
	user := b.newUser(t)
	s1, _ := create(t, b, user)
	s2, _ := create(t, b, user)
	s3, _ := create(t, b, user)
	_, err := b.store.Revoke(ctx, s3.ID, sessions.Revocation{Reason: sessions.ReasonLogout})
	require.NoError(t, err)
	pg := sessions.NewPostgres(pool)
	at1 := b.clock.Now().Add(time.Second).UTC()
	at2 := at1.Add(time.Second)
	got, err := pg.RevokeMany(ctx, []sessions.RevokeItem{
		{ID: s2.ID, Reason: sessions.ReasonAdmin, At: at2},
		{ID: s3.ID, Reason: sessions.ReasonAdmin, At: at2},
		{ID: sessions.NewToken().ID, Reason: sessions.ReasonAdmin, At: at2},
		{ID: s1.ID, Reason: sessions.ReasonLogout, At: at1},
	})
	require.NoError(t, err)
	byID := map[string]*sessions.Session{}
	for _, s := range got {
		byID[s.ID] = s
	}
	require.Len(t, byID, 2)
	require.Equal(t, sessions.ReasonLogout, byID[s1.ID].RevokeReason)
	require.True(t, at1.Equal(byID[s1.ID].RevokedAt))
	require.Equal(t, sessions.ReasonAdmin, byID[s2.ID].RevokeReason)
	require.True(t, at2.Equal(byID[s2.ID].RevokedAt))
	require.Equal(t, user, byID[s2.ID].UserID)
	require.Equal(t, sessions.ReasonLogout, b.durableRow(t, s3.ID).RevokeReason, "an earlier revocation stays as it was")
	none, err := pg.RevokeMany(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, none)
}

// createServiceSessions creates n service sessions of user and returns
// their ids.
func createServiceSessions(t *testing.T, store *sessions.Store, user string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		s, _, err := store.Create(context.Background(), sessions.NewSession{UserID: user, Kind: sessions.KindService})
		require.NoError(t, err)
		ids[i] = s.ID
	}
	return ids
}
