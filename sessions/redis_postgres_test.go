package sessions_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/internal/testenv"
	"github.com/sessionhub/sessionhub/sessions"
)

// TestSecretsAtRest_SEC1_SEC2: secrets are 256 random bits with the shs_
// prefix, and after sessions are created, used, synced and revoked, no
// Redis key or value under the prefix and no column of any Postgres table
// holds a raw secret — only its SHA-256.
func TestSecretsAtRest_SEC1_SEC2(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	pool := testenv.Postgres(t)
	b := newRedisPostgresBundle(t, sessions.Config{}, rdb, prefix, pool)
	user := b.newUser(t)

	var toks []sessions.Token
	seen := map[string]bool{}
	for _, kind := range []sessions.Kind{sessions.KindBrowser, sessions.KindRefresh, sessions.KindService, sessions.KindBrowser} {
		s, tok, err := b.store.Create(ctx, sessions.NewSession{UserID: user, Kind: kind, Device: "dev", IP: "192.0.2.1", UserAgent: "ua"})
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(tok.Secret, sessions.SecretPrefix))
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok.Secret, sessions.SecretPrefix))
		require.NoError(t, err)
		require.Len(t, raw, 32, "256-bit secret")
		require.False(t, seen[tok.Secret])
		seen[tok.Secret] = true
		require.NotContains(t, s.CSRFToken, tok.Secret)
		toks = append(toks, tok)
	}
	// Use them (touch, write-behind), revoke one and restore one from
	// Postgres, so every write path has run.
	b.clock.Advance(6 * time.Minute)
	for _, tok := range toks {
		_, err := b.store.Authenticate(ctx, tok.String())
		require.NoError(t, err)
	}
	_, err := b.store.Revoke(ctx, toks[0].ID, sessions.Revocation{Reason: sessions.ReasonLogout})
	require.NoError(t, err)
	require.NoError(t, rdb.Del(ctx, prefix+"sess:"+toks[1].ID).Err())
	_, err = b.store.Authenticate(ctx, toks[1].String())
	require.NoError(t, err)
	b.stopRun() // flush the write-behind

	var redisDump bytes.Buffer
	for _, key := range b.hotKeys(t) {
		redisDump.WriteString(key + "\n")
		switch typ := rdb.Type(ctx, key).Val(); typ {
		case "hash":
			for f, v := range rdb.HGetAll(ctx, key).Val() {
				redisDump.WriteString(f + "=" + v + "\n")
			}
		case "set":
			redisDump.WriteString(strings.Join(rdb.SMembers(ctx, key).Val(), "\n"))
		case "zset":
			redisDump.WriteString(strings.Join(rdb.ZRange(ctx, key, 0, -1).Val(), "\n"))
		default:
			t.Fatalf("unexpected %s key %s", typ, key)
		}
	}

	var pgDump bytes.Buffer
	tables, err := pool.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	require.NoError(t, err)
	names, err := collectStrings(tables)
	require.NoError(t, err)
	require.Contains(t, names, "sessions")
	for _, name := range names {
		// Every column of every row, bytea as hex.
		rows, err := pool.Query(ctx, `SELECT t::text FROM `+pgIdent(name)+` t`)
		require.NoError(t, err)
		vals, err := collectStrings(rows)
		require.NoError(t, err)
		pgDump.WriteString(strings.Join(vals, "\n"))
	}

	for i, tok := range toks {
		body := strings.TrimPrefix(tok.Secret, sessions.SecretPrefix)
		raw, _ := base64.RawURLEncoding.DecodeString(body)
		sum := sha256.Sum256([]byte(tok.Secret))
		for where, dump := range map[string][]byte{"redis": redisDump.Bytes(), "postgres": pgDump.Bytes()} {
			for _, needle := range [][]byte{
				[]byte(tok.Secret), []byte(body), raw,
				[]byte(hex.EncodeToString([]byte(tok.Secret))), []byte(hex.EncodeToString(raw)),
			} {
				require.False(t, bytes.Contains(dump, needle), "%s holds secret %d", where, i)
			}
		}
		require.Contains(t, pgDump.String(), hex.EncodeToString(sum[:]), "Postgres keeps the SHA-256")
		if i > 0 {
			require.True(t, bytes.Contains(redisDump.Bytes(), sum[:]), "Redis keeps the SHA-256")
		}
	}
	require.NotEmpty(t, redisDump.String())
}

func collectStrings(rows pgx.Rows) ([]string, error) {
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func pgIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// TestWriteBehindThrottle_SEC11: 100 authentications within one minute of
// fake time slide the Redis TTL on every request and cost at most one
// UPDATE of the session's row, counted by a trigger on the real table.
func TestWriteBehindThrottle_SEC11(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	pool := testenv.Postgres(t)
	_, err := pool.Exec(ctx, `
		CREATE TABLE session_updates (id text NOT NULL, last_seen_at timestamptz NOT NULL);
		CREATE FUNCTION log_session_update() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN INSERT INTO session_updates VALUES (NEW.id, NEW.last_seen_at); RETURN NEW; END $$;
		CREATE TRIGGER sessions_updates AFTER UPDATE ON sessions
			FOR EACH ROW EXECUTE FUNCTION log_session_update();`)
	require.NoError(t, err)
	b := newRedisPostgresBundle(t, sessions.Config{}, rdb, prefix, pool)
	require.Equal(t, 5*time.Minute, b.cfg.SyncInterval)
	s, tok := create(t, b, b.newUser(t))
	key := prefix + "sess:" + s.ID

	// Five minutes idle, then a busy minute: the first request is due a
	// write-behind, the 99 others are not.
	b.clock.Advance(5 * time.Minute)
	firstSeen := b.clock.Now()
	for i := range 100 {
		if i > 0 {
			b.clock.Advance(600 * time.Millisecond)
		}
		// Shorten the key's TTL behind the Store's back: the request
		// must slide it back to the idle TTL.
		require.NoError(t, rdb.PExpire(ctx, key, time.Hour).Err())
		_, err := b.store.Authenticate(ctx, tok.String())
		require.NoError(t, err)
		require.Greater(t, rdb.PTTL(ctx, key).Val(), 11*time.Hour, "request %d slid the TTL", i)
		require.Equal(t, b.clock.Now().UnixMicro(), mustInt(t, rdb.HGet(ctx, key, "last_seen")))
	}
	b.stopRun() // flushes whatever write-behind is queued

	var n int
	var lastSeen time.Time
	require.NoError(t, pool.QueryRow(ctx,
		`SELECT count(*), max(last_seen_at) FROM session_updates WHERE id = $1`, s.ID).Scan(&n, &lastSeen))
	require.Equal(t, 1, n, "100 requests in a minute → one UPDATE")
	require.True(t, firstSeen.Equal(lastSeen))
	row := b.durableRow(t, s.ID)
	require.True(t, firstSeen.Add(12*time.Hour).Equal(row.ExpiresAt))
}

func mustInt(t testing.TB, c *redis.StringCmd) int64 {
	n, err := c.Int64()
	require.NoError(t, err)
	return n
}

// TestRedisLossRestore_SEC38: Redis loses everything; exactly the live,
// unrevoked sessions come back from Postgres with their remaining lifetime
// (within SyncInterval), and no revoked or expired one does.
func TestRedisLossRestore_SEC38(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	pool := testenv.Postgres(t)
	const prefix = "sh:"
	cfg := sessions.Config{IdleTTL: time.Hour, MaxAge: 3 * time.Hour, SyncInterval: 5 * time.Minute}
	b := newRedisPostgresBundle(t, cfg, rdb, prefix, pool)
	u1, u2 := b.newUser(t), b.newUser(t)

	expired, expiredTok := create(t, b, u1)
	b.clock.Advance(50 * time.Minute)
	type live struct {
		tok  sessions.Token
		last *sessions.Session // as last seen by the Store
	}
	var lives []live
	var revokedToks []sessions.Token
	for range 3 {
		s, tok := create(t, b, u1)
		lives = append(lives, live{tok, s})
	}
	keep, keepTok := create(t, b, u2)
	lives = append(lives, live{keepTok, keep})
	for range 2 {
		_, tok := create(t, b, u2)
		revokedToks = append(revokedToks, tok)
	}
	r1, r1Tok := create(t, b, u1)
	revokedToks = append(revokedToks, r1Tok)

	// Activity at different times, some of it written behind and some
	// not yet, so remaining lifetimes differ.
	for i, step := range []time.Duration{3 * time.Minute, 4 * time.Minute, 6 * time.Minute, time.Minute} {
		b.clock.Advance(step)
		got, err := b.store.Authenticate(ctx, lives[i].tok.String())
		require.NoError(t, err)
		lives[i].last = got
	}
	_, err := b.store.Revoke(ctx, r1.ID, sessions.Revocation{Reason: sessions.ReasonLogout})
	require.NoError(t, err)
	ids, err := b.store.RevokeUser(ctx, u2, sessions.Revocation{Reason: sessions.ReasonPasswordChange, Except: keep.ID})
	require.NoError(t, err)
	require.Len(t, ids, 2)
	b.clock.Advance(time.Minute) // `expired` passes its idle expiry

	keys, err := rdb.Keys(ctx, "*").Result()
	require.NoError(t, err)
	for _, k := range keys {
		require.True(t, strings.HasPrefix(k, prefix), "key %q outside the prefix", k)
	}

	// The write-behind flushes at least every second; stopping Run
	// flushes it now, so the test sees what a node that lived a second
	// longer would have written.
	b.stopRun()
	srv.Kill()
	srv.Start()
	require.Eventually(t, func() bool { return rdb.Ping(ctx).Err() == nil }, 10*time.Second, 20*time.Millisecond)
	require.Zero(t, rdb.DBSize(ctx).Val(), "Redis came back empty")

	// A fresh node (no negative cache) and the old one must agree.
	other := newRedisPostgresBundle(t, cfg, rdb, prefix, pool)
	other.clock.Advance(b.clock.Now().Sub(other.clock.Now()))

	all := []string{expired.ID}
	want := []sessions.Status{sessions.StatusExpired}
	for _, l := range lives {
		all, want = append(all, l.last.ID), append(want, sessions.StatusAlive)
	}
	for _, tok := range revokedToks {
		all, want = append(all, tok.ID), append(want, sessions.StatusRevoked)
	}
	// Lookup restores the first through the read path, Status the others.
	_, err = other.store.Lookup(ctx, lives[0].last.ID)
	require.NoError(t, err)
	require.True(t, b.hotHas(t, lives[0].last.ID))
	st, err := other.store.Status(ctx, all)
	require.NoError(t, err)
	require.Equal(t, want, st)

	for i, l := range lives {
		got, err := other.store.Lookup(ctx, l.last.ID) // does not slide
		require.NoError(t, err, "live session %d restored", i)
		require.True(t, l.last.AbsoluteExpiresAt.Equal(got.AbsoluteExpiresAt))
		require.False(t, got.ExpiresAt.After(l.last.ExpiresAt))
		require.False(t, got.ExpiresAt.Before(l.last.ExpiresAt.Add(-cfg.SyncInterval)),
			"session %d lost more than SyncInterval: %v vs %v", i, got.ExpiresAt, l.last.ExpiresAt)
		require.Equal(t, l.last.CSRFToken, got.CSRFToken)
		require.True(t, b.hotHas(t, l.last.ID), "session %d back in Redis", i)
		for _, st := range []*sessions.Store{b.store, other.store} {
			_, err := st.Authenticate(ctx, l.tok.String())
			require.NoError(t, err)
		}
	}
	for _, tok := range append(revokedToks, expiredTok) {
		for _, st := range []*sessions.Store{b.store, other.store} {
			_, err := st.Authenticate(ctx, tok.String())
			require.ErrorIs(t, err, sessions.ErrNotFound)
		}
		require.False(t, b.hotHas(t, tok.ID), "a revoked or expired session never comes back")
	}
	require.GreaterOrEqual(t, other.store.Stats().Restored, uint64(len(lives)))
	st, err = b.store.Status(ctx, all)
	require.NoError(t, err)
	require.Equal(t, want, st)
	n, err := b.store.CountActive(ctx)
	require.NoError(t, err)
	require.EqualValues(t, len(lives), n)
}

// TestDegradedRedisDown: with Redis gone, sessions validate from Postgres,
// and creation and revocation still work.
func TestDegradedRedisDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	b := newRedisPostgresBundle(t, sessions.Config{}, rdb, "sh:", testenv.Postgres(t))
	user := b.newUser(t)
	s1, tok1 := create(t, b, user)
	s2, tok2 := create(t, b, user)

	srv.Kill()
	hot, durable := b.store.Health(ctx)
	require.ErrorIs(t, hot, sessions.ErrUnavailable)
	require.NoError(t, durable)

	got, err := b.store.Authenticate(ctx, tok1.String())
	require.NoError(t, err)
	require.Equal(t, s1.ID, got.ID)
	require.NotZero(t, b.store.Stats().HotFailures)

	// The failure opened the breaker: until the clock allows a probe,
	// requests do not wait on the dead Redis at all (Run's PING probes
	// aside).
	hook := &roundTrips{skipPing: true}
	rdb.AddHook(hook)
	for range 20 {
		_, err := b.store.Authenticate(ctx, tok1.String())
		require.NoError(t, err)
	}
	require.Zero(t, hook.n.Load(), "no request waited on the dead Redis")
	b.clock.Advance(time.Second)
	_, err = b.store.Authenticate(ctx, tok1.String())
	require.NoError(t, err)
	// At most one probe per second of the Store's clock (none when Run's
	// PING probe was in flight at that moment).
	require.LessOrEqual(t, hook.n.Load(), int64(1))

	s3, tok3, err := b.store.Create(ctx, sessions.NewSession{UserID: user, Kind: sessions.KindBrowser})
	require.NoError(t, err)
	_, err = b.store.Authenticate(ctx, tok3.String())
	require.NoError(t, err)

	list, err := b.store.List(ctx, user)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{s1.ID, s2.ID, s3.ID}, ids(list))
	st, err := b.store.Status(ctx, []string{s1.ID})
	require.NoError(t, err)
	require.Equal(t, []sessions.Status{sessions.StatusAlive}, st)

	_, err = b.store.Revoke(ctx, s2.ID, sessions.Revocation{Reason: sessions.ReasonLogout})
	require.NoError(t, err)
	_, err = b.store.Authenticate(ctx, tok2.String())
	require.ErrorIs(t, err, sessions.ErrNotFound)
	st, err = b.store.Status(ctx, []string{s1.ID, s2.ID})
	require.NoError(t, err)
	require.Equal(t, []sessions.Status{sessions.StatusAlive, sessions.StatusRevoked}, st)
}

// TestDegradedPostgresDown: with Postgres unreachable (a closed port, or a
// server that accepts and never answers), sessions keep validating from
// Redis and writes fail with ErrUnavailable within API.md's 5 s.
func TestDegradedPostgresDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	healthy := newRedisPostgresBundle(t, sessions.Config{}, rdb, prefix, testenv.Postgres(t))
	user := healthy.newUser(t)
	s1, tok1 := create(t, healthy, user)
	s2, _ := create(t, healthy, user)

	for name, addr := range map[string]string{"closed port": closedPort(t), "silent server": silentServer(t)} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dead, err := pgxpool.New(ctx, "postgres://root@"+addr+"/test?sslmode=disable")
			require.NoError(t, err)
			t.Cleanup(dead.Close)
			b := newRedisPostgresBundle(t, sessions.Config{}, rdb, prefix, dead)
			b.clock.Advance(healthy.clock.Now().Sub(b.clock.Now()) + time.Minute)

			got, err := b.store.Authenticate(ctx, tok1.String())
			require.NoError(t, err, "validation stays on Redis")
			require.Equal(t, s1.ID, got.ID)
			list, err := b.store.List(ctx, user)
			require.NoError(t, err)
			require.Len(t, list, 2)
			st, err := b.store.Status(ctx, []string{s1.ID, s2.ID})
			require.NoError(t, err)
			require.Equal(t, []sessions.Status{sessions.StatusAlive, sessions.StatusAlive}, st)

			within5s(t, func() error {
				_, _, err := b.store.Create(ctx, sessions.NewSession{UserID: user, Kind: sessions.KindBrowser})
				return err
			})
			within5s(t, func() error {
				_, err := b.store.Revoke(ctx, s2.ID, sessions.Revocation{Reason: sessions.ReasonLogout})
				return err
			})
			within5s(t, func() error {
				_, err := b.store.RevokeUser(ctx, user, sessions.Revocation{Reason: sessions.ReasonLogoutAll})
				return err
			})
			within5s(t, func() error { _, err := b.store.Authenticate(ctx, sessions.NewToken().String()); return err })
			within5s(t, func() error { _, durable := b.store.Health(ctx); return durable })
			// Nothing was revoked: the failed revocations changed nothing.
			_, err = b.store.Authenticate(ctx, tok1.String())
			require.NoError(t, err)
			require.True(t, b.hotHas(t, s2.ID))
		})
	}
}

// within5s runs op and requires an error wrapping ErrUnavailable before
// API.md's 5 s bound (a bound on a hang, not a latency target).
func within5s(t *testing.T, op func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- op() }()
	select {
	case err := <-done:
		require.ErrorIs(t, err, sessions.ErrUnavailable)
	case <-time.After(5 * time.Second):
		t.Fatal("operation on an unreachable Postgres hung past 5 s")
		<-done
	}
}

func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentServer accepts connections and never answers, like a Postgres
// behind a black-holed network.
func silentServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// TestRevocationDeliveredAfterRedisOutage: a revocation made while Redis is
// unreachable is recorded in Postgres at once, and its hot delete and event
// reach Redis once it is back (Store.Run retries).
func TestRevocationDeliveredAfterRedisOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, direct, proxy := newOutageBundle(t)
	u1, u2 := b.newUser(t), b.newUser(t)
	s1, tok1 := create(t, b, u1)
	s2, _ := create(t, b, u2)
	s3, _ := create(t, b, u2)
	events := subscribe(t, direct, outagePrefix+sessions.RevocationChannel)

	proxy.Down()
	_, err := b.store.Revoke(ctx, s1.ID, sessions.Revocation{Reason: sessions.ReasonLogout})
	require.NoError(t, err, "Postgres took the revocation")
	_, err = b.store.RevokeUser(ctx, u2, sessions.Revocation{Reason: sessions.ReasonLogoutAll})
	require.NoError(t, err)
	require.False(t, b.durableRow(t, s1.ID).RevokedAt.IsZero())
	_, err = b.store.Authenticate(ctx, tok1.String())
	require.ErrorIs(t, err, sessions.ErrNotFound, "this node refuses it at once")
	for _, id := range []string{s1.ID, s2.ID, s3.ID} {
		require.EqualValues(t, 1, direct.Exists(ctx, outagePrefix+"sess:"+id).Val(), "Redis still holds the stale copy")
	}
	noEvent(t, events)

	proxy.Up()
	got := map[string]map[string]any{}
	for range 2 {
		ev := nextEvent(t, events)
		got[ev["kind"].(string)] = ev
	}
	require.Equal(t, s1.ID, got["session"]["session_id"])
	require.Equal(t, "logout", got["session"]["reason"])
	require.Equal(t, u2, got["user"]["user_id"])
	require.Equal(t, "logout_all", got["user"]["reason"])
	for _, id := range []string{s1.ID, s2.ID, s3.ID} {
		require.Zero(t, direct.Exists(ctx, outagePrefix+"sess:"+id).Val(), "the hot delete ran before the event")
	}
	require.Empty(t, direct.SMembers(ctx, outagePrefix+"user:"+u2+":sess").Val())
}

// TestPostgresErrors: a missing row is ErrNotFound and a bad statement is
// not mistaken for an outage.
func TestPostgresErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := sessions.NewPostgres(testenv.Postgres(t))
	_, err := pg.Get(ctx, sessions.NewToken().ID)
	require.ErrorIs(t, err, sessions.ErrNotFound)
	_, err = pg.Revoke(ctx, sessions.NewToken().ID, sessions.ReasonLogout, time.Now())
	require.ErrorIs(t, err, sessions.ErrNotFound)
	now := time.Now()
	err = pg.Insert(ctx, &sessions.Session{
		ID: sessions.NewToken().ID, UserID: newUUID(), Kind: sessions.KindBrowser, // no such user
		SecretHash: make([]byte, 32), CreatedAt: now, LastSeenAt: now, ExpiresAt: now, AbsoluteExpiresAt: now,
	})
	require.Error(t, err)
	require.NotErrorIs(t, err, sessions.ErrUnavailable)
	require.NotErrorIs(t, err, sessions.ErrNotFound)
	rows, err := pg.GetMany(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, rows)
	require.NoError(t, pg.Sync(ctx, nil))
}

// roundTrips counts the commands and pipelines a go-redis client sends:
// one each is one network round trip.
type roundTrips struct {
	n        atomic.Int64
	skipPing bool // leave out Store.Run's breaker probes
}

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !h.skipPing || cmd.Name() != "ping" {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

// TestAuthenticateCost: validating a live session is two Redis round trips
// (HGETALL; the touch script and ZADD pipelined) and no Postgres query;
// Status of many sessions is one round trip.
func TestAuthenticateCost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	b := newRedisPostgresBundle(t, sessions.Config{}, rdb, prefix, testenv.Postgres(t))
	user := b.newUser(t)
	var all []string
	var tok sessions.Token
	for range 5 {
		var s *sessions.Session
		s, tok = create(t, b, user)
		all = append(all, s.ID)
	}
	// The hook goes in before the first read: the request path's rounds
	// run on a connection of their own, which takes the client's hooks
	// when it is opened.
	hook := &roundTrips{}
	rdb.AddHook(hook)
	_, err := b.store.Authenticate(ctx, tok.String()) // loads the scripts
	require.NoError(t, err)
	hook.n.Store(0)
	before := b.store.Stats()
	for range 10 {
		_, err := b.store.Authenticate(ctx, tok.String())
		require.NoError(t, err)
	}
	require.EqualValues(t, 20, hook.n.Load())
	require.Equal(t, before.DurableQueries, b.store.Stats().DurableQueries)

	hook.n.Store(0)
	st, err := b.store.Status(ctx, all)
	require.NoError(t, err)
	require.Len(t, st, 5)
	require.EqualValues(t, 1, hook.n.Load())
}
