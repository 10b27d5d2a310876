package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/sessions"
)

// TestGetSessionSlides: GET /session answers the account and re-sends the
// cookie with Max-Age = what remains (idle slid, capped by the absolute
// lifetime); idleness past the TTL is a 401.
func TestGetSessionSlides(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	u := b.signup(t, hEmail("slide"))
	b.clock.Advance(11 * time.Hour)
	r := u.do(t, "GET", "/session", nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	m := r.json(t)
	require.ElementsMatch(t, []string{"user", "session", "csrf_token"}, keysOf(m))
	require.Equal(t, u.csrf, m["csrf_token"])
	require.Equal(t, true, m["session"].(map[string]any)["current"])
	require.Contains(t, r.sessionCookie(), "; Max-Age=43200;")
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))

	for i := 0; i < 15; i++ { // 11h + 150h = 161h: 7h of the 168h left
		b.clock.Advance(10 * time.Hour)
		r = u.do(t, "GET", "/session", nil)
		require.Equal(t, http.StatusOK, r.status)
	}
	require.Contains(t, r.sessionCookie(), "; Max-Age=25200;", "Max-Age never exceeds the absolute lifetime")
	b.clock.Advance(7 * time.Hour)
	require.Equal(t, http.StatusUnauthorized, u.do(t, "GET", "/session", nil).status)

	idle := b.signup(t, hEmail("idle"))
	b.clock.Advance(12*time.Hour + time.Second)
	r = idle.do(t, "GET", "/session", nil)
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Equal(t, "unauthenticated", r.errCode(t))
	require.Empty(t, r.sessionCookie())
}

// TestSessionCarriers: the cookie or "Authorization: Session" only — never
// a query string, a form field or a bearer JWT (SECURITY.md 5, 25).
func TestSessionCarriers(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	u := b.signup(t, hEmail("carrier"))
	q := url.Values{CookieName: {u.token}, "session": {u.token}, "token": {u.token}}.Encode()
	require.Equal(t, http.StatusUnauthorized, b.do(t, "GET", "/session?"+q, nil).status)
	r := b.do(t, "POST", "/session/token", q, "Content-Type", "application/x-www-form-urlencoded", "X-CSRF-Token", u.csrf)
	require.Equal(t, http.StatusUnauthorized, r.status)
	// A browser session is not accepted as a header (each carrier has its
	// own CSRF rule), nor a service session as a cookie.
	require.Equal(t, http.StatusUnauthorized, b.do(t, "GET", "/session", nil, "Authorization", "Session "+u.token).status)
	svc, err := b.srv.CreateServiceSession(context.Background(), u.email, "worker", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, b.do(t, "GET", "/session", nil, "Cookie", CookieName+"="+svc).status)
	require.Equal(t, http.StatusOK, b.do(t, "GET", "/sessions", nil, "Authorization", "Session "+svc).status)

	// A JWT never authenticates a session route, a mutation or /session/token.
	tr := u.do(t, "POST", "/session/token", nil)
	require.Equal(t, http.StatusOK, tr.status, "%s", tr.body)
	jwt := tr.json(t)["token"].(string)
	for _, rt := range [][2]string{{"GET", "/session"}, {"GET", "/sessions"}, {"POST", "/session/token"},
		{"POST", "/auth/logout"}, {"POST", "/auth/logout-all"}, {"GET", "/admin/users"}, {"GET", "/admin/stats"},
		{"DELETE", "/sessions/" + u.sessID}} {
		r := b.do(t, rt[0], rt[1], nil, "Authorization", "Bearer "+jwt)
		require.Equal(t, http.StatusUnauthorized, r.status, "%s %s", rt[0], rt[1])
		require.Equal(t, "unauthenticated", r.errCode(t))
	}
	require.Equal(t, http.StatusOK, u.do(t, "GET", "/session", nil).status, "nothing was revoked by the JWT")
	require.GreaterOrEqual(t, b.counter(t, "sessionhub_auth_invalid_session_tokens_total", nil), 2.0)
}

// TestCSRFOrder: 401 before origin before CSRF; the Go cross-origin check
// and the per-session token are both required (SECURITY.md 17).
func TestCSRFOrder(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	u := b.signup(t, hEmail("csrf"))
	cookie := CookieName + "=" + u.token
	evil := []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}

	r := b.do(t, "POST", "/session/token", nil, evil...)
	require.Equal(t, http.StatusUnauthorized, r.status, "no session: 401 first")
	r = b.do(t, "POST", "/session/token", nil, append([]string{"Cookie", cookie}, evil...)...)
	require.Equal(t, http.StatusForbidden, r.status)
	require.Equal(t, "origin", r.errCode(t), "then origin, even without a CSRF token")
	r = b.do(t, "POST", "/session/token", nil, append([]string{"Cookie", cookie, "X-CSRF-Token", u.csrf}, evil...)...)
	require.Equal(t, "origin", r.errCode(t), "a right CSRF token does not excuse a foreign origin")
	// Origin without Sec-Fetch-Site (older browsers): host comparison.
	r = b.do(t, "POST", "/session/token", nil, "Cookie", cookie, "X-CSRF-Token", u.csrf, "Origin", "https://evil.example")
	require.Equal(t, "origin", r.errCode(t))

	// No Origin and no Sec-Fetch-Site passes Go's check: the token is what
	// stops it.
	r = b.do(t, "POST", "/session/token", nil, "Cookie", cookie)
	require.Equal(t, http.StatusForbidden, r.status)
	require.Equal(t, "csrf", r.errCode(t))
	// One character changed: the first, whose six bits are all data (the
	// last one's low bits are padding), and never to itself.
	wrong := "A" + u.csrf[1:]
	if wrong == u.csrf {
		wrong = "B" + u.csrf[1:]
	}
	r = b.do(t, "POST", "/session/token", nil, "Cookie", cookie, "X-CSRF-Token", wrong)
	require.Equal(t, "csrf", r.errCode(t))
	other := b.signup(t, hEmail("csrf2"))
	r = b.do(t, "POST", "/session/token", nil, "Cookie", cookie, "X-CSRF-Token", other.csrf)
	require.Equal(t, "csrf", r.errCode(t), "the token is bound to the session")
	r = b.do(t, "DELETE", "/sessions/"+u.sessID, nil, "Cookie", cookie)
	require.Equal(t, "csrf", r.errCode(t))
	require.Equal(t, http.StatusOK, u.do(t, "GET", "/session", nil).status, "refused mutations changed nothing")

	// Allowed: same-origin fetch, a configured origin, the right token.
	for _, h := range [][]string{
		{"Sec-Fetch-Site", "same-origin"},
		{"Origin", "https://app.example", "Sec-Fetch-Site", "cross-site"},
		{},
	} {
		r = u.do(t, "POST", "/session/token", nil, h...)
		require.Equal(t, http.StatusOK, r.status, "%v: %s", h, r.body)
	}
	// A service session needs no CSRF token.
	svc, err := b.srv.CreateServiceSession(context.Background(), u.email, "worker", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, b.do(t, "POST", "/session/token", nil, "Authorization", "Session "+svc).status)
}

// TestLoginCSRF: signup and login refuse cross-site posts (SECURITY.md 19).
func TestLoginCSRF(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	email := hEmail("logincsrf")
	b.signup(t, email)
	for _, path := range []string{"/auth/login", "/auth/signup", "/auth/refresh"} {
		r := b.do(t, "POST", path, map[string]any{"email": email, "password": hPassword},
			"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
		require.Equal(t, http.StatusForbidden, r.status, path)
		require.Equal(t, "origin", r.errCode(t))
		require.Empty(t, r.sessionCookie())
	}
	r := b.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": hPassword},
		"Origin", "https://app.example", "Sec-Fetch-Site", "cross-site")
	require.Equal(t, http.StatusOK, r.status, "configured origins may log in")
}

// TestSafeMethodsChangeNothing: GET/HEAD/OPTIONS on the mutation routes do
// not log out, revoke or mint (SECURITY.md 18).
func TestSafeMethodsChangeNothing(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	u := b.signup(t, hEmail("safe"))
	other := b.login(t, u.email)
	for _, path := range []string{"/auth/logout", "/auth/logout-all", "/sessions/" + other.sessID, "/session/token", "/auth/password"} {
		for _, m := range []string{"GET", "HEAD", "OPTIONS"} {
			r := u.do(t, m, path, nil)
			require.NotEqual(t, http.StatusOK, r.status, "%s %s", m, path)
			require.NotEqual(t, http.StatusNoContent, r.status, "%s %s", m, path)
		}
	}
	require.Equal(t, http.StatusOK, u.do(t, "GET", "/session", nil).status)
	require.Equal(t, http.StatusOK, other.do(t, "GET", "/session", nil).status)
	require.Zero(t, b.counter(t, "sessionhub_tokens_issued_total", map[string]string{"kind": "access"}))
	require.Empty(t, b.events(t, EventSessionRevoked, u.id))
}

// TestLogout: 204, Max-Age=0, Clear-Site-Data, and the old cookie is dead
// on the very next request on every node (SECURITY.md 12, 13).
func TestLogout(t *testing.T) {
	t.Parallel()
	a := hSetup(t)
	nodeB := hNode(t, a.rdb, a.prefix, a.pool, a.clock)
	u := a.signup(t, hEmail("logout"))
	other := a.login(t, u.email)
	// Warm node B's view of the session.
	require.Equal(t, http.StatusOK, nodeB.do(t, "GET", "/session", nil, "Cookie", CookieName+"="+u.token).status)

	r := u.do(t, "POST", "/auth/logout", nil)
	require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
	c := r.sessionCookie()
	require.Regexp(t, `^__Host-sessionhub=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=None$`, c)
	require.Len(t, r.header.Values("Set-Cookie"), 1)
	require.Equal(t, `"cookies"`, r.header.Get("Clear-Site-Data"))
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))

	require.Equal(t, http.StatusUnauthorized, u.do(t, "GET", "/session", nil).status)
	require.Equal(t, http.StatusUnauthorized, nodeB.do(t, "GET", "/session", nil, "Cookie", CookieName+"="+u.token).status)
	require.Equal(t, http.StatusUnauthorized, u.do(t, "POST", "/auth/logout", nil).status)
	require.Equal(t, http.StatusOK, other.do(t, "GET", "/session", nil).status, "only that session ended")
	ev := a.events(t, EventSessionRevoked, u.id)
	require.Len(t, ev, 1)
	require.Equal(t, u.sessID, ev[0].SessionID)
	require.Equal(t, "logout", ev[0].Detail["reason"])
	require.EqualValues(t, 1, a.counter(t, "sessionhub_sessions_revoked_total", map[string]string{"reason": "logout"}))
}

// TestLogoutAll ends every session of the user, the caller's included.
func TestLogoutAll(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	u := b.signup(t, hEmail("all"))
	others := []*hUser{b.login(t, u.email), b.login(t, u.email)}
	stranger := b.signup(t, hEmail("stranger"))
	r := u.do(t, "POST", "/auth/logout-all", nil)
	require.Equal(t, http.StatusNoContent, r.status)
	require.Contains(t, r.sessionCookie(), "; Max-Age=0;")
	require.Equal(t, `"cookies"`, r.header.Get("Clear-Site-Data"))
	require.Equal(t, http.StatusUnauthorized, u.do(t, "GET", "/session", nil).status)
	for _, o := range others {
		require.Equal(t, http.StatusUnauthorized, o.do(t, "GET", "/session", nil).status)
	}
	require.Equal(t, http.StatusOK, stranger.do(t, "GET", "/session", nil).status)
	require.Len(t, b.events(t, EventSessionRevoked, u.id), 3)
}

// TestSessionsList and DELETE /sessions/{id}: own sessions only; another
// user's id is a 404 exactly like an unknown one (SECURITY.md 14).
func TestSessionsList(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	u := b.signup(t, hEmail("devices"))
	phone := b.login(t, u.email)
	eve := b.signup(t, hEmail("eve"))

	r := u.do(t, "GET", "/sessions", nil)
	require.Equal(t, http.StatusOK, r.status)
	list := r.json(t)["sessions"].([]any)
	require.Len(t, list, 2)
	current := map[string]bool{}
	for _, x := range list {
		s := x.(map[string]any)
		require.ElementsMatch(t, []string{"id", "kind", "created_at", "last_seen_at", "expires_at", "ip", "user_agent", "device", "current"}, keysOf(s))
		current[s["id"].(string)] = s["current"].(bool)
	}
	require.Equal(t, map[string]bool{u.sessID: true, phone.sessID: false}, current)

	theirs := eve.do(t, "DELETE", "/sessions/"+u.sessID, nil)
	unknown := eve.do(t, "DELETE", "/sessions/"+sessions.NewToken().ID, nil)
	garbage := eve.do(t, "DELETE", "/sessions/..%2f..", nil)
	require.Equal(t, http.StatusNotFound, theirs.status)
	require.Equal(t, string(unknown.body), string(theirs.body))
	require.Equal(t, unknown.status, theirs.status)
	require.Equal(t, http.StatusNotFound, garbage.status)
	require.Equal(t, http.StatusOK, u.do(t, "GET", "/session", nil).status, "eve revoked nothing")

	r = u.do(t, "DELETE", "/sessions/"+phone.sessID, nil)
	require.Equal(t, http.StatusNoContent, r.status)
	require.Equal(t, http.StatusUnauthorized, phone.do(t, "GET", "/session", nil).status)
	require.Equal(t, http.StatusOK, u.do(t, "GET", "/session", nil).status)
	require.Equal(t, http.StatusNotFound, u.do(t, "DELETE", "/sessions/"+phone.sessID, nil).status)
}

// TestSessionToken mints a JWT carrying the session's scopes, rate-limited
// per session (SECURITY.md 25).
func TestSessionToken(t *testing.T) {
	t.Parallel()
	b := hSetup(t, func(c *Config, _ *Deps) { c.DefaultScopes = []string{"sub:room:*"} })
	u := b.signup(t, hEmail("tok"))
	r := u.do(t, "POST", "/session/token", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	m := r.json(t)
	require.ElementsMatch(t, []string{"token", "token_type", "expires_in"}, keysOf(m))
	require.Equal(t, "Bearer", m["token_type"])
	require.EqualValues(t, 300, m["expires_in"])
	claims, err := b.srv.tokens.Verify(m["token"].(string))
	require.NoError(t, err)
	require.Equal(t, u.id, claims.UserID)
	require.Equal(t, u.sessID, claims.SessionID)
	require.Equal(t, []string{"sub:room:*"}, claims.Scopes)

	for i := 1; i < 60; i++ {
		require.Equal(t, http.StatusOK, u.do(t, "POST", "/session/token", nil).status, "mint %d", i+1)
	}
	r = u.do(t, "POST", "/session/token", nil)
	require.Equal(t, http.StatusTooManyRequests, r.status)
	require.Equal(t, "rate_limited", r.errCode(t))
	require.NotEmpty(t, r.header.Get("Retry-After"))
	other := b.login(t, u.email)
	require.Equal(t, http.StatusOK, other.do(t, "POST", "/session/token", nil).status, "the limit is per session")
	b.clock.Advance(time.Minute)
	require.Equal(t, http.StatusOK, u.do(t, "POST", "/session/token", nil).status)

	// A revoked session mints nothing.
	require.Equal(t, http.StatusNoContent, other.do(t, "POST", "/auth/logout", nil).status)
	require.Equal(t, http.StatusUnauthorized, other.do(t, "POST", "/session/token", nil).status)
}

// TestServiceSession: the CLI's service session carries exactly the asked
// scopes, each held by the user, and mints a JWT with svc.
func TestServiceSession(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	ctx := context.Background()
	email := hEmail("svc")
	_, err := b.srv.CreateUser(ctx, email, "Worker owner", "", []string{"pub:user:*", "sub:room:*"})
	require.NoError(t, err)
	_, err = b.srv.CreateServiceSession(ctx, email, "mailer", []string{"admin"})
	require.ErrorIs(t, err, ErrScopeNotHeld)
	_, err = b.srv.CreateServiceSession(ctx, email, "bad name!", nil)
	require.ErrorIs(t, err, ErrInvalidService)
	tok, err := b.srv.CreateServiceSession(ctx, email, "mailer", []string{"pub:user:*", "sub:room:42"})
	require.NoError(t, err)
	_, err = sessions.ParseToken(tok)
	require.NoError(t, err)
	r := b.do(t, "POST", "/session/token", nil, "Authorization", "Session "+tok)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	claims, err := b.srv.tokens.Verify(r.json(t)["token"].(string))
	require.NoError(t, err)
	require.Equal(t, []string{"pub:user:*", "sub:room:42"}, claims.Scopes)
	require.Equal(t, "mailer", claims.Service)

	id, _, _ := strings.Cut(tok, ".")
	require.NoError(t, b.srv.RevokeSession(ctx, id))
	require.Equal(t, http.StatusUnauthorized, b.do(t, "POST", "/session/token", nil, "Authorization", "Session "+tok).status)
}

// TestGrantScopesNeedsNewSession: a grant widens no existing session; the
// next login carries it (SECURITY.md 4: the privilege change rotates).
func TestGrantScopesNeedsNewSession(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	u := b.signup(t, hEmail("grant"))
	_, err := b.srv.GrantScopes(context.Background(), strings.ToUpper(u.email), "admin", "sub:x:*")
	require.NoError(t, err)
	require.Equal(t, http.StatusForbidden, u.do(t, "GET", "/admin/stats", nil).status)
	fresh := b.login(t, u.email)
	require.NotEqual(t, u.sessID, fresh.sessID)
	require.Equal(t, http.StatusOK, fresh.do(t, "GET", "/admin/stats", nil).status)
	_, err = b.srv.GrantScopes(context.Background(), u.email, "root")
	require.ErrorIs(t, err, ErrInvalidScope)
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	r := b.do(t, "GET", "/.well-known/jwks.json", nil)
	require.Equal(t, http.StatusOK, r.status)
	keys := r.json(t)["keys"].([]any)
	require.NotEmpty(t, keys)
	k := keys[0].(map[string]any)
	require.Equal(t, "OKP", k["kty"])
	require.Equal(t, "EdDSA", k["alg"])
	require.Equal(t, "sig", k["use"])
	require.NotEmpty(t, k["kid"])
	require.NotContains(t, k, "d")
}

func TestCookieSession(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	u := b.signup(t, hEmail("ws"))
	r, err := http.NewRequest("GET", "/ws", nil)
	require.NoError(t, err)
	w := httptest.NewRecorder()
	_, err = b.srv.CookieSession(w, r)
	require.Error(t, err)
	require.Empty(t, w.Header().Values("Set-Cookie"))
	r.Header.Set("Cookie", CookieName+"="+u.token)
	s, err := b.srv.CookieSession(w, r)
	require.NoError(t, err)
	require.Equal(t, u.sessID, s.ID)
	// The cookie is re-sent with a fresh Max-Age (it slid).
	set := w.Result().Cookies()
	require.Len(t, set, 1)
	require.Equal(t, CookieName, set[0].Name)
	require.Equal(t, u.token, set[0].Value)
	require.Positive(t, set[0].MaxAge)
	require.Equal(t, http.StatusNoContent, u.do(t, "POST", "/auth/logout", nil).status)
	w = httptest.NewRecorder()
	_, err = b.srv.CookieSession(w, r)
	require.ErrorIs(t, err, sessions.ErrNotFound)
	require.Empty(t, w.Header().Values("Set-Cookie"))
}
