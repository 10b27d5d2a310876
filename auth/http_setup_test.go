package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sessionhub/sessionhub/internal/testenv"
	"github.com/sessionhub/sessionhub/sessions"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// hClock is the fake clock of the HTTP tests: the Store, the rate limits,
// the tokens and the refresher all read it.
type hClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *hClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *hClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// hBundle is an auth Server on real Redis and Postgres behind an httptest
// server, with handles on its collaborators.
type hBundle struct {
	srv    *Server
	h      http.Handler // the router, for benchmarks without TCP
	url    string
	store  *sessions.Store
	pool   *pgxpool.Pool
	rdb    *redis.Client
	prefix string
	clock  *hClock
	reg    *prometheus.Registry
}

type hOpt func(*Config, *Deps)

// hSetup builds the server exactly as serve does (auth.New on the real
// stores) with a fake clock.
func hSetup(t testing.TB, opts ...hOpt) *hBundle {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	pool := testenv.Postgres(t)
	clock := &hClock{now: time.Now().UTC().Truncate(time.Microsecond)}
	return hNode(t, rdb, prefix, pool, clock, opts...)
}

// hNode builds one node on the given stores; two nodes on the same stores
// are two replicas behind a load balancer.
func hNode(t testing.TB, rdb *redis.Client, prefix string, pool *pgxpool.Pool, clock *hClock, opts ...hOpt) *hBundle {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	hot := sessions.NewRedis(rdb, prefix)
	store, err := sessions.New(sessions.Config{Now: clock.Now, Logger: log}, hot, sessions.NewPostgres(pool), hot)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = store.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	keys, err := EphemeralKeySet()
	require.NoError(t, err)
	tokens, err := NewTokens(TokenConfig{Issuer: "http://localhost:8080", Now: clock.Now}, keys)
	require.NoError(t, err)
	refresher, err := NewRefresher(RefreshConfig{Grace: 30 * time.Second, Now: clock.Now}, NewRefreshPostgres(pool))
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	cfg := Config{Now: clock.Now, AllowedOrigins: []string{"https://app.example"}}
	deps := Deps{Store: store, Pool: pool, Redis: rdb, RedisPrefix: prefix, Tokens: tokens,
		Refresher: refresher, Logger: log, Registerer: reg}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	srv, err := New(cfg, deps)
	require.NoError(t, err)
	r := chi.NewRouter()
	srv.Routes(r)
	hs := httptest.NewServer(r)
	t.Cleanup(hs.Close)
	return &hBundle{srv: srv, h: r, url: hs.URL, store: store, pool: pool, rdb: rdb, prefix: prefix, clock: clock, reg: reg}
}

// hResp is a response read whole.
type hResp struct {
	status int
	header http.Header
	body   []byte
}

func (r *hResp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

func (r *hResp) errCode(t testing.TB) string {
	t.Helper()
	m := r.json(t)
	require.Contains(t, m, "message")
	code, _ := m["error"].(string)
	return code
}

// sessionCookie returns the Set-Cookie line of the session cookie, or "".
func (r *hResp) sessionCookie() string {
	for _, v := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(v, CookieName+"=") {
			return v
		}
	}
	return ""
}

// hReq is one request: body is JSON-encoded unless it is a string or
// []byte; header pairs follow.
func (b *hBundle) do(t testing.TB, method, path string, body any, header ...string) *hResp {
	t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	case []byte:
		rd = bytes.NewReader(v)
	default:
		js, err := json.Marshal(v)
		require.NoError(t, err)
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, b.url+path, rd)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return &hResp{status: resp.StatusCode, header: resp.Header, body: data}
}

// hUser is a browser signed in through the API.
type hUser struct {
	b      *hBundle
	email  string
	pass   string
	id     string
	token  string // cookie value
	csrf   string
	sessID string
}

const hPassword = "correct horse battery"

func hEmail(tag string) string {
	// Letters and digits only: base64url's "_" and "-" would make random
	// addresses match literal searches for those characters.
	r := strings.NewReplacer("-", "x", "_", "y").Replace(sessions.RandomString(6))
	return tag + "-" + strings.ToLower(r) + "@example.com"
}

// signup creates an account through POST /auth/signup.
func (b *hBundle) signup(t testing.TB, email string) *hUser {
	t.Helper()
	r := b.do(t, "POST", "/auth/signup", map[string]any{"email": email, "password": hPassword, "name": "Test"})
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	return b.userFrom(t, email, r)
}

// login signs in again (a new browser session).
func (b *hBundle) login(t testing.TB, email string) *hUser {
	t.Helper()
	r := b.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": hPassword})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	return b.userFrom(t, email, r)
}

func (b *hBundle) userFrom(t testing.TB, email string, r *hResp) *hUser {
	t.Helper()
	m := r.json(t)
	u := &hUser{b: b, email: email, pass: hPassword}
	u.id = m["user"].(map[string]any)["id"].(string)
	u.sessID = m["session"].(map[string]any)["id"].(string)
	u.csrf = m["csrf_token"].(string)
	c := r.sessionCookie()
	require.NotEmpty(t, c)
	u.token = strings.SplitN(strings.TrimPrefix(c, CookieName+"="), ";", 2)[0]
	return u
}

// do sends a request with the cookie and, for mutations, the CSRF token.
func (u *hUser) do(t testing.TB, method, path string, body any, header ...string) *hResp {
	t.Helper()
	h := []string{"Cookie", CookieName + "=" + u.token}
	if method != "GET" {
		h = append(h, "X-CSRF-Token", u.csrf)
	}
	return u.b.do(t, method, path, body, append(h, header...)...)
}

// grant gives the user scopes (through the CLI method) and logs in again
// so a session carries them.
func (b *hBundle) admin(t testing.TB) *hUser {
	t.Helper()
	email := hEmail("admin")
	b.signup(t, email)
	_, err := b.srv.GrantScopes(context.Background(), email, "admin")
	require.NoError(t, err)
	return b.login(t, email)
}

// events returns the audit rows of type typ for userID ("" = any user).
func (b *hBundle) events(t testing.TB, typ EventType, userID string) []AuditEvent {
	t.Helper()
	rows, err := b.pool.Query(context.Background(),
		`SELECT type, coalesce(user_id::text, ''), coalesce(session_id, ''), ip, user_agent, detail
		   FROM auth_events WHERE type = $1 AND ($2 = '' OR user_id::text = $2) ORDER BY id`, string(typ), userID)
	require.NoError(t, err)
	defer rows.Close()
	var out []AuditEvent
	for rows.Next() {
		var e AuditEvent
		var typ string
		require.NoError(t, rows.Scan(&typ, &e.UserID, &e.SessionID, &e.IP, &e.UserAgent, &e.Detail))
		e.Type = EventType(typ)
		out = append(out, e)
	}
	require.NoError(t, rows.Err())
	return out
}

// counter reads a counter of the bundle's registry.
func (b *hBundle) counter(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := b.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
