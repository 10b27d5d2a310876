package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// confSessionChecks are API.md's "Session routes".
func confSessionChecks() []confCheck {
	return []confCheck{
		{name: "get-session", fn: confGetSession},
		{name: "list-sessions", fn: confListSessions},
		{name: "delete-session", fn: confDeleteSession},
		{name: "session-token", fn: confSessionToken},
		{name: "session-token-ratelimit", fn: confSessionTokenLimit},
		{name: "jwt-is-not-a-session", fn: confJWTNotSession},
		{name: "jwks", fn: confJWKS},
	}
}

func confGetSession(t *testing.T, c *confClient) {
	a := c.user("me")
	c.requireError(c.do("GET", "/session", nil), http.StatusUnauthorized, "unauthenticated")
	r := c.do("GET", "/session", nil, withCookie(a.cookie))
	require.Equal(t, http.StatusOK, r.code, "%s", r)
	m := c.obj(r)
	requireKeys(t, m, "user", "session", "csrf_token")
	u := requireUser(t, m["user"])
	require.Equal(t, a.userID, u["id"])
	require.Equal(t, a.email, u["email"])
	s := requireSession(t, m["session"])
	require.Equal(t, a.sid, s["id"])
	require.Equal(t, true, s["current"])
	require.Equal(t, a.csrf, m["csrf_token"], "the CSRF token is per session")
	signed := a.body["session"].(map[string]any)
	require.False(t, requireTime(t, s["last_seen_at"], "last_seen_at").Before(requireTime(t, signed["last_seen_at"], "last_seen_at")))
	require.False(t, requireTime(t, s["expires_at"], "expires_at").Before(requireTime(t, signed["expires_at"], "expires_at")), "slides, never shrinks")
	// Every cookie-authenticated request re-sends the cookie with a fresh Max-Age.
	ck, maxAge := c.requireSessionCookie(r)
	require.Equal(t, a.cookie.Value, ck.Value)
	require.Equal(t, 12*3600, maxAge, "the idle TTL slid to its full length")
	r = c.do("GET", "/sessions", nil, withCookie(a.cookie))
	c.requireSessionCookie(r)

	// Sessions are never read from the query string or a form field.
	c.requireError(c.do("GET", "/session?session="+q(a.cookie.Value), nil), http.StatusUnauthorized, "unauthenticated")
	// A browser cookie is not a service credential.
	c.requireError(c.do("GET", "/session", nil, withSessionAuth(a.cookie.Value)), http.StatusUnauthorized, "unauthenticated")
}

func confListSessions(t *testing.T, c *confClient) {
	a := c.user("devices")
	b := c.login(a.email, a.password)
	gone := c.login(a.email, a.password)
	require.Equal(t, http.StatusNoContent, c.do("POST", "/auth/logout", nil, as(gone)).code)
	other := c.user("stranger")

	c.requireError(c.do("GET", "/sessions", nil), http.StatusUnauthorized, "unauthenticated")
	r := c.do("GET", "/sessions", nil, withCookie(b.cookie))
	require.Equal(t, http.StatusOK, r.code, "%s", r)
	m := c.obj(r)
	requireKeys(t, m, "sessions")
	list, ok := m["sessions"].([]any)
	require.True(t, ok, "sessions is an array: %s", r)
	ids := map[string]bool{}
	for _, x := range list {
		s := requireSession(t, x)
		ids[str(s["id"])] = true
		require.Equal(t, s["id"] == b.sid, s["current"], "current only for the caller: %v", s)
	}
	require.True(t, ids[a.sid] && ids[b.sid], "both live sessions listed: %s", r)
	require.False(t, ids[gone.sid], "a logged-out session is not live")
	require.False(t, ids[other.sid], "another user's session")
	require.Len(t, list, 2)
}

func confDeleteSession(t *testing.T, c *confClient) {
	a := c.user("del")
	b := c.login(a.email, a.password)
	mob := c.mobileFor(a)
	mobSID := str(mob["session"].(map[string]any)["id"])
	other := c.user("victim")
	wsB := c.srv().socket(b.cookie, b.csrf)

	c.requireError(c.do("DELETE", "/sessions/"+b.sid, nil), http.StatusUnauthorized, "unauthenticated")
	// Another user's session id is a 404, exactly like an unknown one.
	r := c.do("DELETE", "/sessions/"+other.sid, nil, as(a))
	c.requireError(r, http.StatusNotFound, "")
	unknown := c.do("DELETE", "/sessions/AAAAAAAAAAAAAAAAAAAAAA", nil, as(a))
	c.requireError(unknown, http.StatusNotFound, "")
	require.Equal(t, string(unknown.body), string(r.body))
	for _, garbage := range []string{"garbage", "x", strings.Repeat("A", 300), "AAAAAAAAAAAAAAAAAAAAA%21", "%00", "..%2F..%2Fetc", other.sid + ".shs_x"} {
		c.requireError(c.do("DELETE", "/sessions/"+garbage, nil, as(a)), http.StatusNotFound, "")
	}
	require.Equal(t, http.StatusOK, c.do("GET", "/session", nil, withCookie(other.cookie)).code, "the other user's session lives on")

	r = c.do("DELETE", "/sessions/"+b.sid, nil, as(a))
	require.Equal(t, http.StatusNoContent, r.code, "%s", r)
	code, reason := c.closed(wsB)
	require.EqualValues(t, 4001, code)
	require.Equal(t, "session revoked", reason)
	c.requireError(c.do("GET", "/session", nil, withCookie(b.cookie)), http.StatusUnauthorized, "unauthenticated")
	// A mobile device of the user: its refresh token dies with it.
	require.Equal(t, http.StatusNoContent, c.do("DELETE", "/sessions/"+mobSID, nil, as(a)).code)
	c.requireError(c.refresh(str(mob["refresh_token"])), http.StatusUnauthorized, "invalid_token")
	// Revoked already: 404.
	c.requireError(c.do("DELETE", "/sessions/"+b.sid, nil, as(a)), http.StatusNotFound, "")
	require.Equal(t, http.StatusOK, c.do("GET", "/session", nil, withCookie(a.cookie)).code)
}

func confSessionToken(t *testing.T, c *confClient) {
	a := c.user("tok")
	c.requireError(c.do("POST", "/session/token", nil), http.StatusUnauthorized, "unauthenticated")
	r := c.do("POST", "/session/token", nil, as(a))
	require.Equal(t, http.StatusOK, r.code, "%s", r)
	require.Equal(t, "no-store", r.hdr.Get("Cache-Control"))
	m := c.obj(r)
	requireKeys(t, m, "token", "token_type", "expires_in")
	require.Equal(t, "Bearer", m["token_type"])
	require.EqualValues(t, 300, m["expires_in"])

	claims := c.verifyJWT(str(m["token"]))
	require.Equal(t, "http://localhost:8080", claims["iss"])
	aud := claims["aud"]
	if l, ok := aud.([]any); ok && len(l) == 1 {
		aud = l[0]
	}
	require.Equal(t, "sessionhub", aud)
	require.Equal(t, a.userID, claims["sub"])
	require.Equal(t, a.sid, claims["sid"])
	scope, isStr := claims["scope"].(string)
	require.True(t, isStr, "scope is one space-separated string: %v", claims["scope"])
	require.ElementsMatch(t, strings.Fields(confScopes), strings.Fields(scope), "the session's scopes")
	require.NotEmpty(t, claims["jti"])
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	require.Contains(t, claims, "nbf")
	require.EqualValues(t, 300, exp-iat)
	require.NotContains(t, claims, "svc", "browser sessions have no svc claim")

	// Revoked session: 401.
	require.Equal(t, http.StatusNoContent, c.do("POST", "/auth/logout", nil, as(a)).code)
	c.requireError(c.do("POST", "/session/token", nil, as(a)), http.StatusUnauthorized, "unauthenticated")
}

func confSessionTokenLimit(t *testing.T, c *confClient) {
	a := c.user("toklimit")
	for i := range 200 {
		r := c.do("POST", "/session/token", nil, as(a))
		if r.code == http.StatusTooManyRequests {
			require.GreaterOrEqual(t, i, 55, "60 per minute per session")
			c.requireError(r, http.StatusTooManyRequests, "rate_limited")
			require.Regexp(t, `^[1-9][0-9]*$`, r.hdr.Get("Retry-After"))
			// Per session: another session of the same user is not limited.
			b := c.login(a.email, a.password)
			require.Equal(t, http.StatusOK, c.do("POST", "/session/token", nil, as(b)).code)
			return
		}
		require.Equal(t, http.StatusOK, r.code, "%s", r)
	}
	t.Fatal("no 429 after 200 tokens from one session")
}

// A JWT is not a session: session routes, session mutations and
// /session/token refuse it with 401.
func confJWTNotSession(t *testing.T, c *confClient) {
	a := c.user("jwtonly")
	jwt := c.token(a)
	for _, rt := range []struct{ method, path string }{
		{"GET", "/session"}, {"GET", "/sessions"}, {"POST", "/session/token"},
		{"DELETE", "/sessions/" + a.sid}, {"POST", "/auth/logout"}, {"POST", "/auth/logout-all"},
		{"GET", "/admin/users"}, {"GET", "/admin/stats"}, {"GET", "/admin/events"},
	} {
		r := c.do(rt.method, rt.path, nil, withBearer(jwt))
		c.requireError(r, http.StatusUnauthorized, "unauthenticated")
	}
	c.requireError(c.do("POST", "/auth/password", map[string]string{"current_password": a.password, "new_password": "whatever else"}, withBearer(jwt)),
		http.StatusUnauthorized, "unauthenticated")
	require.Equal(t, http.StatusOK, c.do("GET", "/session", nil, withCookie(a.cookie)).code, "nothing was revoked")
}

func confJWKS(t *testing.T, c *confClient) {
	r := c.do("GET", "/.well-known/jwks.json", nil)
	require.Equal(t, http.StatusOK, r.code)
	require.True(t, strings.HasPrefix(r.hdr.Get("Content-Type"), "application/json"))
	m := c.obj(r)
	requireKeys(t, m, "keys")
	keys, ok := m["keys"].([]any)
	require.True(t, ok)
	require.NotEmpty(t, keys)
	for _, k := range keys {
		jwk := k.(map[string]any)
		requireKeys(t, jwk, "kty", "crv", "x", "kid", "use", "alg")
		require.Equal(t, "OKP", jwk["kty"])
		require.Equal(t, "Ed25519", jwk["crv"])
		require.Equal(t, "sig", jwk["use"])
		require.Equal(t, "EdDSA", jwk["alg"])
		require.NotEmpty(t, jwk["kid"])
		require.NotContains(t, jwk, "d")
	}
}
