package auth

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/internal/testenv"
	"github.com/sessionhub/sessionhub/sessions"
)

// TestExpiryAudited: a session that reaches its idle expiry gets one
// session_revoked row (reason expired) in auth_events, written by the
// expiry pass that marked it, even when two nodes run their passes at
// once; a later pass adds none, and the revocations report still counts
// the session once.
func TestExpiryAudited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	pool := testenv.Postgres(t)
	clock := &hClock{now: time.Now().UTC().Truncate(time.Microsecond)}
	log := slog.New(slog.DiscardHandler)
	// Two nodes on the same Redis and Postgres, without their Run loops:
	// the test runs the expiry passes itself.
	node := func() (*sessions.Store, *Server) {
		hot := sessions.NewRedis(rdb, prefix)
		store, err := sessions.New(sessions.Config{Now: clock.Now, Logger: log}, hot, sessions.NewPostgres(pool), hot)
		require.NoError(t, err)
		keys, err := EphemeralKeySet()
		require.NoError(t, err)
		tokens, err := NewTokens(TokenConfig{Issuer: "http://localhost:8080", Now: clock.Now}, keys)
		require.NoError(t, err)
		refresher, err := NewRefresher(RefreshConfig{Now: clock.Now}, NewRefreshPostgres(pool))
		require.NoError(t, err)
		srv, err := New(Config{Now: clock.Now}, Deps{Store: store, Pool: pool, Redis: rdb, RedisPrefix: prefix,
			Tokens: tokens, Refresher: refresher, Logger: log})
		require.NoError(t, err)
		return store, srv
	}
	storeA, srvA := node()
	storeB, srvB := node()

	u, err := srvA.CreateUser(ctx, hEmail("expiry"), "", "correct horse battery", nil)
	require.NoError(t, err)
	var ids []string
	for range 3 {
		sess, _, err := storeA.Create(ctx, sessions.NewSession{UserID: u.ID, Kind: sessions.KindBrowser})
		require.NoError(t, err)
		ids = append(ids, sess.ID)
	}
	start := clock.Now()
	clock.Advance(12*time.Hour + 10*time.Minute) // past the idle TTL and the write-behind margin

	var wg sync.WaitGroup
	var marked [2]int
	var errs [2]error
	for i, st := range []*sessions.Store{storeA, storeB} {
		wg.Go(func() { marked[i], errs[i] = st.ExpireDue(ctx) })
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.Equal(t, 3, marked[0]+marked[1], "each session marked by one pass")
	counted := func(srv *Server) float64 {
		return testutil.ToFloat64(srv.metrics.sessionsRevoked.WithLabelValues("expired"))
	}
	require.EqualValues(t, marked[0], counted(srvA), "each node counts the sessions it marked")
	require.EqualValues(t, marked[1], counted(srvB))

	b := &hBundle{pool: pool}
	requireRows := func() {
		t.Helper()
		events := b.events(t, EventSessionRevoked, u.ID)
		require.Len(t, events, 3)
		var got []string
		for _, e := range events {
			require.Equal(t, "expired", e.Detail["reason"])
			require.Equal(t, "browser", e.Detail["kind"])
			at, err := time.Parse(time.RFC3339Nano, e.Detail["expired_at"].(string))
			require.NoError(t, err)
			require.True(t, at.Equal(start.Add(12*time.Hour)), "expired at its idle expiry, got %v", at)
			got = append(got, e.SessionID)
		}
		require.ElementsMatch(t, ids, got)
	}
	requireRows()

	n, err := storeB.ExpireDue(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	requireRows()

	rows, err := queryRevocationsReport(ctx, pool, ReportRange{Since: start, Until: clock.Now().Add(time.Hour), Bucket: BucketDay})
	require.NoError(t, err)
	var expired int64
	for _, r := range rows {
		if r.Reason == "expired" {
			expired += r.Count
		}
	}
	require.EqualValues(t, 3, expired, "the report counts each expiry once")
}
