package auth

import (
	"context"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/sessions"
)

// hungPool is a pool on a server that accepts connections and never
// answers: Postgres hangs (a network partition, a frozen host), which
// unlike a refused connection costs whatever time the caller allows.
func hungPool(t testing.TB) *pgxpool.Pool {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	pool, err := pgxpool.New(context.Background(), "postgres://root@"+ln.Addr().String()+"/test?sslmode=disable")
	require.NoError(t, err)
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		pool.Close()
	})
	return pool
}

// deadPool is a pool on a port nothing listens on: Postgres is down.
func deadPool(t testing.TB) *pgxpool.Pool {
	cfg, err := pgxpool.ParseConfig("postgres://root@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	require.NoError(t, err)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// TestPostgresDown: what needs Postgres answers 503 unavailable, never a
// 500 and never internal detail.
func TestPostgresDown(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	email := hEmail("pgdown")
	u := b.signup(t, email)

	down := hSetup(t, func(_ *Config, d *Deps) { d.Users = NewPostgresUsers(deadPool(t)); d.Auditor = NewMemoryAuditor() })
	for _, r := range []*hResp{
		down.do(t, "POST", "/auth/signup", map[string]any{"email": hEmail("x"), "password": hPassword}),
		down.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": hPassword}),
	} {
		require.Equal(t, http.StatusServiceUnavailable, r.status, "%s", r.body)
		require.Equal(t, "unavailable", r.errCode(t))
		require.NotContains(t, string(r.body), "127.0.0.1")
		require.NotContains(t, string(r.body), "dial")
	}

	// GET /session keeps answering from Redis when the users table is
	// unreachable (with what the node knows of the user).
	usersDown := hNode(t, b.rdb, b.prefix, b.pool, b.clock, func(_ *Config, d *Deps) { d.Users = NewPostgresUsers(deadPool(t)) })
	r := usersDown.do(t, "GET", "/session", nil, "Cookie", CookieName+"="+u.token)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.Equal(t, u.id, r.json(t)["user"].(map[string]any)["id"])
	require.Equal(t, u.csrf, r.json(t)["csrf_token"])

	// The session store's Postgres down: login cannot record a session.
	hot := sessions.NewRedis(b.rdb, b.prefix)
	store, err := sessions.New(sessions.Config{Now: b.clock.Now, Logger: slog.New(slog.DiscardHandler)}, hot, sessions.NewPostgres(deadPool(t)), hot)
	require.NoError(t, err)
	node := hNode(t, b.rdb, b.prefix, b.pool, b.clock, func(_ *Config, d *Deps) { d.Store = store })
	r = node.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": hPassword})
	require.Equal(t, http.StatusServiceUnavailable, r.status, "%s", r.body)
	require.Equal(t, "unavailable", r.errCode(t))
	// Sessions keep validating from Redis.
	require.Equal(t, http.StatusOK, node.do(t, "GET", "/session", nil, "Cookie", CookieName+"="+u.token).status)
	r = node.do(t, "POST", "/auth/logout", nil, "Cookie", CookieName+"="+u.token, "X-CSRF-Token", u.csrf)
	require.Equal(t, http.StatusServiceUnavailable, r.status, "a revocation needs Postgres first")
}

// TestNoSecretsAnywhere drives a full session life and checks that no
// response body holds a session or refresh secret or the hex of a secret
// hash, and that audit rows name public ids only (SECURITY.md 3, 37).
func TestNoSecretsAnywhere(t *testing.T) {
	t.Parallel()
	cl := &hCluster{}
	b := hSetup(t, func(_ *Config, d *Deps) { d.Cluster = cl })
	ctx := context.Background()
	var bodies []string
	keep := func(r *hResp) *hResp { bodies = append(bodies, string(r.body)); return r }

	email := hEmail("secrets")
	u := b.signup(t, email)
	admin := b.admin(t)
	keep(u.do(t, "GET", "/session", nil))
	keep(u.do(t, "GET", "/sessions", nil))
	keep(u.do(t, "POST", "/session/token", nil))
	m := keep(b.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": hPassword, "device": "Pixel"}, "X-Client", "mobile")).json(t)
	rt := m["refresh_token"].(string)
	keep(b.do(t, "POST", "/auth/refresh", map[string]any{"refresh_token": rt}))
	keep(admin.do(t, "GET", "/admin/users/"+u.id+"/sessions", nil))
	keep(admin.do(t, "GET", "/admin/users?q=secrets", nil))
	keep(u.do(t, "POST", "/auth/password", map[string]any{"current_password": hPassword, "new_password": "another password"}))
	keep(b.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": "wrong!wrong!"}))
	svc, err := b.srv.CreateServiceSession(ctx, email, "w", nil)
	require.NoError(t, err)
	keep(admin.do(t, "DELETE", "/admin/sessions/"+strings.SplitN(svc, ".", 2)[0], nil))
	keep(admin.do(t, "POST", "/admin/users/"+u.id+"/logout-all", nil))

	// A refresh token appears only in the login and refresh bodies it
	// belongs to; session secrets appear in no body at all.
	secrets := []string{u.token, admin.token, svc, rt}
	for _, s := range secrets[:3] {
		_, secret, _ := strings.Cut(s, ".")
		h := sessions.HashSecret(secret)
		for _, body := range bodies {
			require.NotContains(t, body, secret)
			require.NotContains(t, body, hex.EncodeToString(h))
		}
	}
	for _, body := range bodies {
		require.NotContains(t, body, "shs_")
		require.NotContains(t, body, "secret_hash")
		require.NotContains(t, body, "argon2id")
	}

	// Every lifecycle event is a row naming the public session id.
	var dump string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT coalesce(string_agg(row_to_json(e)::text, E'\n'), '') FROM auth_events e`).Scan(&dump))
	for _, s := range secrets {
		_, secret, _ := strings.Cut(s, ".")
		require.NotContains(t, dump, secret)
	}
	require.NotContains(t, dump, "shs_")
	require.NotContains(t, dump, "shr_")
	for _, typ := range []EventType{EventSignup, EventLoginSucceeded, EventLoginFailed, EventSessionCreated,
		EventSessionRevoked, EventRefreshRotated, EventPasswordChanged, EventAdminAction} {
		require.NotEmpty(t, b.events(t, typ, ""), "no %s event", typ)
	}
	created := b.events(t, EventSessionCreated, u.id)
	require.Equal(t, u.sessID, created[0].SessionID)
	require.Equal(t, "127.0.0.1", created[0].IP)
	reasons := map[string]bool{}
	for _, e := range b.events(t, EventSessionRevoked, u.id) {
		require.True(t, sessions.ValidID(e.SessionID))
		reasons[e.Detail["reason"].(string)] = true
	}
	require.Equal(t, map[string]bool{"password_change": true, "admin": true}, reasons)
	// The table refuses edits.
	_, err = b.pool.Exec(ctx, `UPDATE auth_events SET ip = 'x'`)
	require.Error(t, err)
}

// TestMemoryMode: with no Postgres and no Redis the same surface works on
// memory stores (embedded mode).
func TestMemoryMode(t *testing.T) {
	t.Parallel()
	clock := &hClock{now: b0()}
	mem := sessions.NewMemory(clock.Now)
	store, err := sessions.New(sessions.Config{Now: clock.Now, Logger: slog.New(slog.DiscardHandler)}, mem, mem, mem)
	require.NoError(t, err)
	keys, err := EphemeralKeySet()
	require.NoError(t, err)
	tokens, err := NewTokens(TokenConfig{Issuer: "http://localhost:8080", Now: clock.Now}, keys)
	require.NoError(t, err)
	ref, err := NewRefresher(RefreshConfig{Now: clock.Now}, NewRefreshMemory())
	require.NoError(t, err)
	audit := NewMemoryAuditor()
	srv, err := New(Config{Now: clock.Now}, Deps{Store: store, Tokens: tokens, Refresher: ref, Auditor: audit,
		Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	ctx := context.Background()
	u, err := srv.CreateUser(ctx, "Mem@x.io", "M", hPassword, []string{"admin"})
	require.NoError(t, err)
	_, err = srv.CreateUser(ctx, "mem@X.io", "", hPassword, nil)
	require.ErrorIs(t, err, ErrEmailTaken)
	tok, err := srv.CreateServiceSession(ctx, "mem@x.io", "w", []string{"admin"})
	require.NoError(t, err)
	_, err = store.Authenticate(ctx, tok)
	require.NoError(t, err)
	n, err := srv.LogoutAll(ctx, "MEM@x.io")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	var types []EventType
	for _, e := range audit.Events() {
		types = append(types, e.Type)
		require.True(t, e.UserID == "" || e.UserID == u.ID)
	}
	require.Contains(t, types, EventSessionRevoked)
}

func b0() (t0 time.Time) { return time.Now().UTC().Truncate(time.Microsecond) }
