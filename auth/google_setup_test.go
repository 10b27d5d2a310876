package auth

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/oauth2-proxy/mockoidc"
	"github.com/stretchr/testify/require"
)

// googleRig is the auth server of hSetup (auth.New on real Postgres and
// Redis, fake clock) whose Google login points at a real OIDC provider on
// 127.0.0.1. The browser reaches the server through public, the server's
// SESSIONHUB_PUBLIC_URL, so the provider's redirects land on it for real.
type googleRig struct {
	*hBundle
	provider *mockoidc.MockOIDC
	public   *httptest.Server
	late     *lateHandler
	tr       *http.Transport
	// googleOpt configures a node's Google login (and public URL) like
	// this rig's, for more nodes on the same stores.
	googleOpt hOpt
}

func newGoogleRig(t *testing.T, withGoogle bool, opts ...hOpt) *googleRig {
	t.Helper()
	late := &lateHandler{}
	public := httptest.NewServer(late)
	t.Cleanup(public.Close)
	g := &googleRig{public: public, late: late, tr: &http.Transport{}}
	t.Cleanup(g.tr.CloseIdleConnections)
	if withGoogle {
		g.provider = startProvider(t)
	}
	g.googleOpt = func(cfg *Config, _ *Deps) {
		cfg.PublicURL = public.URL
		if withGoogle {
			cfg.Google = GoogleConfig{
				ClientID: g.provider.ClientID, ClientSecret: g.provider.ClientSecret,
				Issuer: g.provider.Issuer(), HTTPClient: providerClient(t),
			}
		}
	}
	g.hBundle = hSetup(t, append([]hOpt{g.googleOpt}, opts...)...)
	g.route(g.hBundle)
	return g
}

// route sends the public URL's traffic to node n from now on (a load
// balancer switching replicas).
func (g *googleRig) route(n *hBundle) {
	r := chi.NewRouter()
	n.srv.Routes(r)
	r.Get("/", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "home") })
	g.late.set(r)
}

// lateHandler lets a server start (so its URL is known) before the handler
// that needs the URL exists.
type lateHandler struct {
	mu sync.RWMutex
	h  http.Handler
}

func (l *lateHandler) set(h http.Handler) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.h = h
}

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.RLock()
	h := l.h
	l.mu.RUnlock()
	if h == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	h.ServeHTTP(w, r)
}

// queue makes u the next person to sign in at the provider.
func (g *googleRig) queue(u *oidcUser) { g.provider.QueueUser(u) }

// googleLogins reads sessionhub_auth_logins_total{method="google",result}.
func (g *googleRig) googleLogins(t *testing.T, result string) float64 {
	t.Helper()
	return g.counter(t, "sessionhub_auth_logins_total", map[string]string{"method": "google", "result": result})
}

func (g *googleRig) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, g.pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// written counts the rows a refused callback must not have created.
func (g *googleRig) written(t *testing.T) (users, identities, sess int) {
	t.Helper()
	return g.count(t, "SELECT count(*) FROM users"),
		g.count(t, "SELECT count(*) FROM user_identities"),
		g.count(t, "SELECT count(*) FROM sessions")
}

// allEvents returns the types, users and details of the whole audit log,
// oldest first.
func (g *googleRig) allEvents(t *testing.T) []AuditEvent {
	t.Helper()
	rows, err := g.pool.Query(context.Background(),
		"SELECT type, coalesce(user_id::text, ''), detail FROM auth_events ORDER BY id")
	require.NoError(t, err)
	defer rows.Close()
	var out []AuditEvent
	for rows.Next() {
		var e AuditEvent
		var typ string
		require.NoError(t, rows.Scan(&typ, &e.UserID, &e.Detail))
		e.Type = EventType(typ)
		out = append(out, e)
	}
	require.NoError(t, rows.Err())
	return out
}

// lastEvent returns the newest audit event of type typ.
func (g *googleRig) lastEvent(t *testing.T, typ EventType) AuditEvent {
	t.Helper()
	evs := g.events(t, typ, "")
	require.NotEmpty(t, evs, "no %s event", typ)
	return evs[len(evs)-1]
}

// browser is one person's user agent: a cookie jar, redirects not followed
// so each hop can be inspected.
type browser struct {
	rig *googleRig
	c   *http.Client
}

func (g *googleRig) browser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{rig: g, c: &http.Client{Jar: jar, Transport: g.tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type reply struct {
	*http.Response
	body string
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.body), &m), r.body)
	return m
}

// setCookie returns the Set-Cookie line for name, or "".
func (r reply) setCookie(name string) string {
	for _, v := range r.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, name+"=") {
			return v
		}
	}
	return ""
}

func (b *browser) do(t *testing.T, req *http.Request) reply {
	t.Helper()
	resp, err := b.c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{resp, string(body)}
}

func (b *browser) get(t *testing.T, u string) reply {
	t.Helper()
	if strings.HasPrefix(u, "/") {
		u = b.rig.public.URL + u
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	return b.do(t, req)
}

// signup creates a password account (hBundle.signup) and logs this
// browser into it.
func (b *browser) signup(t *testing.T, email string) string {
	t.Helper()
	u := b.rig.signup(t, email)
	pub, err := url.Parse(b.rig.public.URL)
	require.NoError(t, err)
	b.c.Jar.SetCookies(pub, []*http.Cookie{{Name: CookieName, Value: u.token, Path: "/", Secure: true, HttpOnly: true}})
	return u.id
}

// whoami returns the user id of this browser's session, or "" on 401.
func (b *browser) whoami(t *testing.T) string {
	t.Helper()
	rep := b.get(t, "/session")
	if rep.StatusCode == http.StatusUnauthorized {
		return ""
	}
	require.Equal(t, http.StatusOK, rep.StatusCode, rep.body)
	return rep.json(t)["user"].(map[string]any)["id"].(string)
}

// authorize starts a flow at start (/auth/google/login or /link), lets the
// provider authenticate the queued person, and returns the callback URL
// the provider redirected to, not yet visited.
func (b *browser) authorize(t *testing.T, start string) *url.URL {
	t.Helper()
	rep := b.get(t, start)
	require.Equal(t, http.StatusFound, rep.StatusCode, rep.body)
	loc := rep.Header.Get("Location")
	require.True(t, strings.HasPrefix(loc, b.rig.provider.AuthorizationEndpoint()+"?"), loc)
	rep = b.get(t, loc)
	require.Equal(t, http.StatusFound, rep.StatusCode, rep.body)
	cb, err := url.Parse(rep.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, b.rig.public.URL+GoogleCallbackPath, cb.Scheme+"://"+cb.Host+cb.Path)
	return cb
}

// google runs a whole flow from start and returns the callback's reply.
func (b *browser) google(t *testing.T, start string) reply {
	t.Helper()
	return b.get(t, b.authorize(t, start).String())
}

// requireRefused checks a 400-class JSON refusal that set no session.
func requireRefused(t *testing.T, rep reply, status int, code string) {
	t.Helper()
	require.Equal(t, status, rep.StatusCode, rep.body)
	require.Equal(t, code, rep.json(t)["error"], rep.body)
	require.Empty(t, rep.setCookie(CookieName), "a refused callback must not set a session")
	require.Contains(t, rep.setCookie(oidcStateCookie), "Max-Age=0", "the state cookie is consumed")
}
