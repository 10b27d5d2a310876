package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// confAuthChecks are API.md's "Auth routes", "Cookies", "CSRF" and "Rate
// limits" sections, plus the request limits of its preamble.
func confAuthChecks() []confCheck {
	return []confCheck{
		{name: "signup", fn: confSignup},
		{name: "signup-errors", fn: confSignupErrors},
		{name: "login", fn: confLogin},
		{name: "login-mobile", fn: confLoginMobile},
		{name: "refresh", fn: confRefresh},
		{name: "password", fn: confPasswordChange},
		{name: "logout", fn: confLogout},
		{name: "logout-all", fn: confLogoutAll},
		{name: "csrf-order", fn: confCSRFOrder},
		{name: "cors", fn: confCORS},
		{name: "request-limits", fn: confRequestLimits},
		{name: "ratelimit-ip", fn: confRateLimitIP},
		{name: "ratelimit-account", fn: confRateLimitAccount},
		{name: "health", fn: confHealth},
		{name: "google-off", fn: confGoogleOff},
		{name: "metrics", fn: confMetrics},
	}
}

func confSignup(t *testing.T, c *confClient) {
	email := c.email("Signup")
	r := c.do("POST", "/auth/signup", map[string]string{"email": email, "password": confPassword, "name": "Sig Nup"})
	require.Equal(t, http.StatusCreated, r.code, "%s", r)
	require.True(t, strings.HasPrefix(r.hdr.Get("Content-Type"), "application/json"))
	m := c.obj(r)
	requireKeys(t, m, "user", "session", "csrf_token")
	u := requireUser(t, m["user"])
	require.Equal(t, email, u["email"])
	require.Equal(t, "Sig Nup", u["name"])
	s := requireSession(t, m["session"])
	require.Equal(t, "browser", s["kind"])
	require.Equal(t, true, s["current"])
	require.Equal(t, c.ip, s["ip"], "the client IP from a trusted proxy's X-Forwarded-For")
	require.NotEmpty(t, m["csrf_token"])

	ck, maxAge := c.requireSessionCookie(r)
	// Max-Age = min(remaining idle TTL 12h, remaining absolute 168h): all
	// 12 h of a new session, to the second, as its expires_at says.
	require.Equal(t, 12*3600, maxAge)
	require.Equal(t, requireTime(t, s["expires_at"], "expires_at"),
		requireTime(t, s["last_seen_at"], "last_seen_at").Add(time.Duration(maxAge)*time.Second))
	require.True(t, strings.HasPrefix(ck.Value, str(s["id"])+"."), "the cookie is <session id>.<secret>")
	secret := strings.SplitN(ck.Value, ".", 2)[1]
	require.NotContains(t, string(r.body), secret, "the secret never appears in a body")
}

func confSignupErrors(t *testing.T, c *confClient) {
	for _, bad := range []string{"", "not-an-email", "a@", "@x.io", "Bob <bob@x.io>", " bob@x.io"} {
		r := c.do("POST", "/auth/signup", map[string]string{"email": bad, "password": confPassword})
		c.requireError(r, http.StatusBadRequest, "invalid_email")
	}
	for _, n := range []int{0, 7, 1025, 4096} {
		r := c.do("POST", "/auth/signup", map[string]string{"email": c.email("weak"), "password": strings.Repeat("p", n)})
		c.requireError(r, http.StatusBadRequest, "weak_password")
	}
	// The bounds themselves are allowed: 8 and 1024 bytes.
	for _, n := range []int{8, 1024} {
		r := c.do("POST", "/auth/signup", map[string]string{"email": c.email("edge"), "password": strings.Repeat("p", n)})
		require.Equal(t, http.StatusCreated, r.code, "%d-byte password: %s", n, r)
	}

	// Emails are unique case-insensitively, and log in in any case.
	local := c.email("Bob")
	c.signup(local)
	for _, variant := range []string{strings.ToLower(local), strings.ToUpper(local)} {
		r := c.do("POST", "/auth/signup", map[string]string{"email": variant, "password": confPassword})
		c.requireError(r, http.StatusConflict, "email_taken")
	}
	r := c.do("POST", "/auth/login", map[string]string{"email": strings.ToUpper(local), "password": confPassword})
	require.Equal(t, http.StatusOK, r.code, "login with another case: %s", r)

	// Request-shape errors keep the error body.
	c.requireError(c.do("POST", "/auth/signup", `{"email":`), http.StatusBadRequest, "")
	c.requireError(c.do("POST", "/auth/signup", `[]`), http.StatusBadRequest, "")
}

func confLogin(t *testing.T, c *confClient) {
	a := c.user("login")
	r := c.do("POST", "/auth/login", map[string]string{"email": a.email, "password": a.password})
	require.Equal(t, http.StatusOK, r.code, "%s", r)
	m := c.obj(r)
	requireKeys(t, m, "user", "session", "csrf_token")
	require.Equal(t, a.userID, requireUser(t, m["user"])["id"])
	s := requireSession(t, m["session"])
	require.Equal(t, "browser", s["kind"])
	require.Equal(t, true, s["current"])
	ck, _ := c.requireSessionCookie(r)

	// Login always creates a new session; a presented cookie is never upgraded.
	r2 := c.do("POST", "/auth/login", map[string]string{"email": a.email, "password": a.password}, withCookie(ck))
	require.Equal(t, http.StatusOK, r2.code, "%s", r2)
	ck2, _ := c.requireSessionCookie(r2)
	require.NotEqual(t, ck.Value, ck2.Value)
	require.NotEqual(t, s["id"], requireSession(t, c.obj(r2)["session"])["id"])

	// Unknown email and wrong password: same status, body and header names.
	wrong := c.do("POST", "/auth/login", map[string]string{"email": a.email, "password": "wrong password!"})
	unknown := c.do("POST", "/auth/login", map[string]string{"email": c.email("nobody"), "password": "wrong password!"})
	c.requireError(wrong, http.StatusUnauthorized, "invalid_credentials")
	c.requireError(unknown, http.StatusUnauthorized, "invalid_credentials")
	require.Equal(t, string(wrong.body), string(unknown.body))
	require.Equal(t, headerNames(wrong), headerNames(unknown))
	raw, _ := setCookie(wrong)
	require.Empty(t, raw, "a failed login sets no cookie")

	// Missing fields are a failed login too, never a 500.
	r = c.do("POST", "/auth/login", `{}`)
	require.Less(t, r.code, 500, "%s", r)
	c.requireError(r, r.code, "")
}

func confLoginMobile(t *testing.T, c *confClient) {
	a := c.user("mobile")
	r := c.do("POST", "/auth/login", map[string]string{"email": a.email, "password": a.password, "device": "Pixel 8"},
		withHeader("X-Client", "mobile"))
	require.Equal(t, http.StatusOK, r.code, "%s", r)
	m := c.obj(r)
	requireKeys(t, m, "user", "session", "refresh_token", "access_token", "expires_in")
	require.Empty(t, r.hdr.Values("Set-Cookie"), "a mobile login sets no cookie")
	require.Equal(t, "no-store", r.hdr.Get("Cache-Control"))
	s := requireSession(t, m["session"])
	require.Equal(t, "refresh", s["kind"])
	require.Equal(t, "Pixel 8", s["device"])
	require.Equal(t, true, s["current"])
	require.Regexp(t, refreshRe, m["refresh_token"])
	require.EqualValues(t, 300, m["expires_in"])
	claims := c.verifyJWT(str(m["access_token"]))
	require.Equal(t, a.userID, claims["sub"])
	require.Equal(t, s["id"], claims["sid"])

	// The access token opens a socket and publishes within its scopes.
	ws, w := c.ws(str(m["access_token"]))
	require.Equal(t, s["id"], w["session_id"])
	ws.CloseNow()
	pr := c.do("POST", "/api/publish", map[string]any{"channel": "room:mobile", "data": 1}, withBearer(str(m["access_token"])))
	require.Equal(t, http.StatusAccepted, pr.code, "%s", pr)
}

// mobile logs a fresh user in as a mobile device.
func (c *confClient) mobile() (*confAccount, map[string]any) {
	c.t.Helper()
	a := c.user("dev")
	return a, c.mobileFor(a)
}

// mobileFor logs a's user in as a mobile device and returns the body.
func (c *confClient) mobileFor(a *confAccount) map[string]any {
	c.t.Helper()
	r := c.do("POST", "/auth/login", map[string]string{"email": a.email, "password": a.password, "device": "Pixel 8"},
		withHeader("X-Client", "mobile"))
	require.Equal(c.t, http.StatusOK, r.code, "%s", r)
	return c.obj(r)
}

func (c *confClient) refresh(tok string) *confResp {
	c.t.Helper()
	return c.do("POST", "/auth/refresh", map[string]string{"refresh_token": tok})
}

func confRefresh(t *testing.T, c *confClient) {
	_, m := c.mobile()
	r0 := str(m["refresh_token"])
	sid := str(m["session"].(map[string]any)["id"])

	first := c.refresh(r0)
	require.Equal(t, http.StatusOK, first.code, "%s", first)
	require.Equal(t, "no-store", first.hdr.Get("Cache-Control"))
	fm := c.obj(first)
	requireKeys(t, fm, "refresh_token", "access_token", "expires_in")
	r1 := str(fm["refresh_token"])
	require.Regexp(t, refreshRe, r1)
	require.NotEqual(t, r0, r1)
	require.EqualValues(t, 300, fm["expires_in"])
	require.Equal(t, sid, c.verifyJWT(str(fm["access_token"]))["sid"])

	// A retry of the just-rotated token within the grace window gets the
	// same successor and a fresh access token.
	retry := c.refresh(r0)
	require.Equal(t, http.StatusOK, retry.code, "grace retry: %s", retry)
	require.Equal(t, r1, str(c.obj(retry)["refresh_token"]), "the same successor, no fork")

	second := c.refresh(r1)
	require.Equal(t, http.StatusOK, second.code, "%s", second)
	r2 := str(c.obj(second)["refresh_token"])
	access := str(c.obj(second)["access_token"])
	ws, _ := c.ws(access)

	// An older ancestor is always reuse: the device session is revoked,
	// its sockets closed, and the newest token dies with it.
	c.requireError(c.refresh(r0), http.StatusUnauthorized, "invalid_token")
	code, _ := c.closed(ws)
	require.Equal(t, websocket.StatusCode(4001), code, "the device session's socket closes as revoked")
	c.requireError(c.refresh(r2), http.StatusUnauthorized, "invalid_token")
	_, rr, err := c.dial("", http.Header{"Authorization": {"Bearer " + access}})
	require.Error(t, err)
	c.requireError(rr, http.StatusUnauthorized, "")

	// Garbage.
	c.requireError(c.refresh("garbage"), http.StatusUnauthorized, "invalid_token")
	c.requireError(c.refresh(""), http.StatusUnauthorized, "invalid_token")
	c.requireError(c.refresh("AAAAAAAAAAAAAAAAAAAAAA.shr_"+strings.Repeat("A", 43)), http.StatusUnauthorized, "invalid_token")
}

func confPasswordChange(t *testing.T, c *confClient) {
	a := c.user("pw")
	b := c.login(a.email, a.password)
	mob := c.mobileFor(a)
	jwtB := c.token(b)
	wsB, _ := c.ws(jwtB)

	c.requireError(c.do("POST", "/auth/password", map[string]string{"current_password": "wrong password!", "new_password": "a new password"}, as(a)),
		http.StatusUnauthorized, "invalid_credentials")
	c.requireError(c.do("POST", "/auth/password", map[string]string{"current_password": a.password, "new_password": "short"}, as(a)),
		http.StatusBadRequest, "weak_password")
	c.requireError(c.do("POST", "/auth/password", map[string]string{"current_password": a.password, "new_password": "a new password"}),
		http.StatusUnauthorized, "unauthenticated")

	r := c.do("POST", "/auth/password", map[string]string{"current_password": a.password, "new_password": "a new password"}, as(a))
	require.Equal(t, http.StatusNoContent, r.code, "%s", r)
	require.Empty(t, r.body)

	// Every other session is revoked (its sockets closed); the caller's stays.
	c.requireError(c.do("GET", "/session", nil, withCookie(b.cookie)), http.StatusUnauthorized, "unauthenticated")
	code, _ := c.closed(wsB)
	require.Contains(t, []websocket.StatusCode{4001, 4002}, code)
	require.Equal(t, http.StatusOK, c.do("GET", "/session", nil, withCookie(a.cookie)).code)
	c.requireError(c.refresh(str(mob["refresh_token"])), http.StatusUnauthorized, "invalid_token")
	c.requireError(c.do("POST", "/auth/login", map[string]string{"email": a.email, "password": a.password}),
		http.StatusUnauthorized, "invalid_credentials")
	c.login(a.email, "a new password")
}

func confLogout(t *testing.T, c *confClient) {
	a := c.user("logout")
	ws := c.srv().socket(a.cookie, a.csrf) // socket_test.go's helper
	c.requireError(c.do("POST", "/auth/logout", nil), http.StatusUnauthorized, "unauthenticated")

	r := c.do("POST", "/auth/logout", nil, as(a))
	require.Equal(t, http.StatusNoContent, r.code, "%s", r)
	c.requireClearedCookie(r)
	require.Equal(t, `"cookies"`, r.hdr.Get("Clear-Site-Data"))
	require.Equal(t, "no-store", r.hdr.Get("Cache-Control"))
	code, reason := c.closed(ws)
	require.Equal(t, websocket.StatusCode(4001), code)
	require.Equal(t, "session revoked", reason)

	c.requireError(c.do("GET", "/session", nil, withCookie(a.cookie)), http.StatusUnauthorized, "unauthenticated")
	c.requireError(c.do("POST", "/auth/logout", nil, as(a)), http.StatusUnauthorized, "unauthenticated")
}

func confLogoutAll(t *testing.T, c *confClient) {
	a := c.user("lall")
	b := c.login(a.email, a.password)
	mob := c.mobileFor(a)
	wsA := c.srv().socket(a.cookie, a.csrf)
	wsB := c.srv().socket(b.cookie, b.csrf)
	other := c.user("bystander")
	wsO := c.srv().socket(other.cookie, other.csrf)

	c.requireError(c.do("POST", "/auth/logout-all", nil), http.StatusUnauthorized, "unauthenticated")
	r := c.do("POST", "/auth/logout-all", nil, as(a))
	require.Equal(t, http.StatusNoContent, r.code, "%s", r)
	c.requireClearedCookie(r)
	require.Equal(t, `"cookies"`, r.hdr.Get("Clear-Site-Data"))
	for _, ws := range []*websocket.Conn{wsA, wsB} {
		code, reason := c.closed(ws)
		require.Equal(t, websocket.StatusCode(4002), code)
		require.Equal(t, "logged out everywhere", reason)
	}
	for _, x := range []*confAccount{a, b} {
		c.requireError(c.do("GET", "/session", nil, withCookie(x.cookie)), http.StatusUnauthorized, "unauthenticated")
	}
	c.requireError(c.refresh(str(mob["refresh_token"])), http.StatusUnauthorized, "invalid_token")
	// Another user is untouched.
	require.Equal(t, http.StatusOK, c.do("GET", "/session", nil, withCookie(other.cookie)).code)
	c.send(wsO, map[string]any{"type": "subscribe", "channel": "room:alive", "id": 1})
	require.Equal(t, "ack", c.frame(wsO)["type"])
}

func confCSRFOrder(t *testing.T, c *confClient) {
	a := c.user("csrf")
	bad := withHeader("Origin", confEvilOrigin)
	// No valid session: 401 first, whatever the origin and token.
	c.requireError(c.do("POST", "/session/token", nil, bad), http.StatusUnauthorized, "unauthenticated")
	c.requireError(c.do("POST", "/session/token", nil, bad, withCookie(&http.Cookie{Name: a.cookie.Name, Value: "AAAAAAAAAAAAAAAAAAAAAA.shs_" + strings.Repeat("A", 43)})),
		http.StatusUnauthorized, "unauthenticated")
	// A session from a refused origin: 403 origin, even with the right token.
	c.requireError(c.do("POST", "/session/token", nil, withCookie(a.cookie), bad), http.StatusForbidden, "origin")
	c.requireError(c.do("POST", "/session/token", nil, as(a), bad), http.StatusForbidden, "origin")
	c.requireError(c.do("POST", "/session/token", nil, as(a), withHeader("Sec-Fetch-Site", "cross-site")), http.StatusForbidden, "origin")
	// Then CSRF: missing or wrong token.
	c.requireError(c.do("POST", "/session/token", nil, withCookie(a.cookie)), http.StatusForbidden, "csrf")
	c.requireError(c.do("POST", "/session/token", nil, withCookie(a.cookie), withHeader("Origin", confOrigin)), http.StatusForbidden, "csrf")
	c.requireError(c.do("POST", "/session/token", nil, withCookie(a.cookie), withCSRF(a.csrf+"x")), http.StatusForbidden, "csrf")
	c.requireError(c.do("DELETE", "/sessions/"+a.sid, nil, withCookie(a.cookie)), http.StatusForbidden, "csrf")
	c.requireError(c.do("POST", "/auth/logout", nil, withCookie(a.cookie)), http.StatusForbidden, "csrf")
	// An allowed origin with the token passes.
	require.Equal(t, http.StatusOK, c.do("POST", "/session/token", nil, as(a), withHeader("Origin", confOrigin)).code)
	// Login CSRF: session-less posts from another site are refused too.
	c.requireError(c.do("POST", "/auth/login", map[string]string{"email": a.email, "password": a.password}, bad),
		http.StatusForbidden, "origin")
	c.requireError(c.do("POST", "/auth/signup", map[string]string{"email": c.email("x"), "password": confPassword}, bad),
		http.StatusForbidden, "origin")
	// The session survived all of that.
	require.Equal(t, http.StatusOK, c.do("GET", "/session", nil, withCookie(a.cookie)).code)
}

// confCORS: the allowed origins may call the API from the browser, which
// takes a preflight (JSON bodies, X-CSRF-Token) and, for the page to read
// the answer, Access-Control-Allow-Origin naming it with credentials.
func confCORS(t *testing.T, c *confClient) {
	a := c.user("cors")
	pre := func(origin, method string) *confResp {
		return c.do("OPTIONS", "/session/token", nil, withHeader("Origin", origin),
			withHeader("Access-Control-Request-Method", method),
			withHeader("Access-Control-Request-Headers", "content-type,x-csrf-token"))
	}
	for _, m := range []string{"POST", "DELETE"} {
		r := pre(confOrigin, m)
		require.Equal(t, http.StatusNoContent, r.code, "preflight of %s: %s", m, r)
		require.Equal(t, confOrigin, r.hdr.Get("Access-Control-Allow-Origin"), "%s", r)
		require.Equal(t, "true", r.hdr.Get("Access-Control-Allow-Credentials"), "%s", r)
		require.Contains(t, r.hdr.Get("Access-Control-Allow-Methods"), m, "%s", r)
		allowed := strings.ToLower(r.hdr.Get("Access-Control-Allow-Headers"))
		for _, h := range []string{"content-type", "x-csrf-token", "x-client", "authorization"} {
			require.Contains(t, allowed, h, "%s", r)
		}
	}
	// The answers themselves, errors included, are readable by the page.
	for _, r := range []*confResp{
		c.do("POST", "/session/token", nil, as(a), withHeader("Origin", confOrigin)),
		c.do("GET", "/session", nil, withCookie(a.cookie), withHeader("Origin", confOrigin)),
		c.do("POST", "/session/token", nil, withCookie(a.cookie), withHeader("Origin", confOrigin)),
	} {
		require.Equal(t, confOrigin, r.hdr.Get("Access-Control-Allow-Origin"), "%s", r)
		require.Equal(t, "true", r.hdr.Get("Access-Control-Allow-Credentials"), "%s", r)
		require.Contains(t, r.hdr.Values("Vary"), "Origin", "%s", r)
	}
	// Another origin: its preflight is refused and nothing is opened to it.
	r := pre(confEvilOrigin, "POST")
	c.requireError(r, http.StatusForbidden, "origin")
	require.Empty(t, r.hdr.Get("Access-Control-Allow-Origin"))
	r = c.do("GET", "/session", nil, withCookie(a.cookie), withHeader("Origin", confEvilOrigin))
	require.Equal(t, http.StatusOK, r.code, "%s", r)
	require.Empty(t, r.hdr.Get("Access-Control-Allow-Origin"), "%s", r)
	require.Empty(t, r.hdr.Get("Access-Control-Allow-Credentials"), "%s", r)
	c.requireError(c.do("POST", "/session/token", nil, as(a), withHeader("Origin", confEvilOrigin)), http.StatusForbidden, "origin")
}

func confRequestLimits(t *testing.T, c *confClient) {
	big := `{"email":"x@conf.example","password":"` + strings.Repeat("p", 65<<10) + `"}`
	c.requireError(c.do("POST", "/auth/signup", big), http.StatusRequestEntityTooLarge, "too_large")
	c.requireError(c.do("POST", "/auth/login", big), http.StatusRequestEntityTooLarge, "too_large")
	// Just over 64 KiB, declared or chunked.
	over := `{"email":"x@conf.example","password":"` + strings.Repeat("p", 64<<10) + `"}`
	require.Greater(t, len(over), 64<<10)
	c.requireError(c.do("POST", "/auth/login", over), http.StatusRequestEntityTooLarge, "too_large")
	// Exactly 64 KiB is not too large.
	exact := `{"email":"x@conf.example","password":"`
	exact += strings.Repeat("p", 64<<10-len(exact)-2) + `"}`
	require.Len(t, exact, 64<<10)
	r := c.do("POST", "/auth/signup", exact)
	c.requireError(r, http.StatusBadRequest, "weak_password")
	req, _ := http.NewRequest("POST", c.url("/auth/login"), struct{ *strings.Reader }{strings.NewReader(over)})
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = -1
	resp, err := c.http.Do(req)
	require.NoError(t, err)
	body := make([]byte, 512)
	n, _ := resp.Body.Read(body)
	resp.Body.Close()
	c.requireError(&confResp{code: resp.StatusCode, hdr: resp.Header, body: body[:n]}, http.StatusRequestEntityTooLarge, "too_large")

	a := c.user("limits")
	jwt := c.token(a)
	c.requireError(c.do("POST", "/api/publish", `{"channel":"room:big","data":"`+strings.Repeat("d", 65<<10)+`"}`, withBearer(jwt)),
		http.StatusRequestEntityTooLarge, "too_large")

	// Headers over 16 KiB: 431 with API.md's error body, on a fresh
	// connection and on a kept-alive one; a bit under: served.
	fresh := c.fresh()
	r = fresh.do("GET", "/healthz", nil, withHeader("X-Big", strings.Repeat("x", 17<<10)))
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, r.code, "fresh connection: %s", r)
	assert.True(t, strings.HasPrefix(r.hdr.Get("Content-Type"), "application/json"), "431 body is JSON: %s", r)
	assert.True(t, json.Valid(r.body) && bytes.Contains(r.body, []byte(`"error"`)), "431 body: %s", r)
	keep := c.fresh()
	require.Equal(t, http.StatusOK, keep.do("GET", "/healthz", nil).code)
	r = keep.do("GET", "/healthz", nil, withHeader("X-Big", strings.Repeat("x", 17<<10)))
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, r.code, "kept-alive connection: %s", r)
	require.Equal(t, http.StatusOK, c.fresh().do("GET", "/healthz", nil, withHeader("X-Big", strings.Repeat("x", 15<<10))).code)
	r = c.fresh().do("GET", "/session", nil, withHeader("X-Big", strings.Repeat("x", 17<<10)))
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, r.code, "%s", r)

	// A wrong method is a JSON error too.
	c.requireError(c.do("PUT", "/auth/login", `{}`), http.StatusMethodNotAllowed, "")
	c.requireError(c.do("GET", "/auth/logout", nil), http.StatusMethodNotAllowed, "")
	c.requireError(c.do("GET", "/api/nothing-here", nil, withHeader("Accept", "application/json")), http.StatusNotFound, "")
}

// Per client IP: 60 login or signup attempts per minute, then 429 +
// Retry-After; the body never says whether the account exists.
func confRateLimitIP(t *testing.T, c *confClient) {
	a := c.user("iplimit") // from another IP than the one exhausted below
	d := c.fresh()
	first := true
	exhaust := func() {
		t.Helper()
		for i := range 200 {
			// Invalid signups are cheap attempts: they count, then fail validation.
			r := d.do("POST", "/auth/signup", map[string]string{"email": "nope", "password": "x"})
			if r.code == http.StatusTooManyRequests {
				if first {
					require.GreaterOrEqual(t, i, 55, "the budget is 60 per minute")
					first = false
				}
				d.requireError(r, http.StatusTooManyRequests, "rate_limited")
				return
			}
			d.requireError(r, http.StatusBadRequest, "invalid_email")
		}
		t.Fatal("no 429 after 200 signups from one IP")
	}
	probe := func(email string) *confResp {
		t.Helper()
		for range 5 {
			exhaust()
			if r := d.do("POST", "/auth/login", map[string]string{"email": email, "password": "whatever!!"}); r.code == http.StatusTooManyRequests {
				return r
			}
		}
		t.Fatal("a login right after the IP budget ran out was let through 5 times")
		return nil
	}
	known, unknown := probe(a.email), probe(c.email("ghost"))
	for _, r := range []*confResp{known, unknown} {
		d.requireError(r, http.StatusTooManyRequests, "rate_limited")
		ra, err := strconv.Atoi(r.hdr.Get("Retry-After"))
		require.NoError(t, err, "Retry-After in seconds: %q", r.hdr.Get("Retry-After"))
		require.GreaterOrEqual(t, ra, 1)
	}
	require.Equal(t, string(known.body), string(unknown.body))
	require.Equal(t, headerNames(known), headerNames(unknown))
	// Another IP is unaffected.
	c.login(a.email, a.password)

	// IPv6 clients share one budget per /64.
	n := c.h.next()
	v6a := c.h.clientAt(t, fmt.Sprintf("2001:db8:%x:%x::1", n>>16&0xffff, n&0xffff))
	v6b := c.h.clientAt(t, fmt.Sprintf("2001:db8:%x:%x:ffff::2", n>>16&0xffff, n&0xffff))
	var r *confResp
	for range 5 { // a token may come back between the two requests on a slow machine
		for i := range 200 {
			if v6a.do("POST", "/auth/signup", map[string]string{"email": "nope", "password": "x"}).code == http.StatusTooManyRequests {
				break
			}
			require.Less(t, i, 199, "no 429 from one IPv6 address")
		}
		if r = v6b.do("POST", "/auth/signup", map[string]string{"email": "nope", "password": "x"}); r.code == http.StatusTooManyRequests {
			break
		}
	}
	v6b.requireError(r, http.StatusTooManyRequests, "rate_limited")
}

// Per account: 5 free failures, then backoff; during it even the right
// password gets 429; unknown accounts behave the same.
func confRateLimitAccount(t *testing.T, c *confClient) {
	a := c.user("acct")
	fail := func(email string) *confResp {
		t.Helper()
		d := c.fresh()
		for i := range 12 {
			r := d.do("POST", "/auth/login", map[string]string{"email": email, "password": "wrong password!"})
			if r.code == http.StatusTooManyRequests {
				require.GreaterOrEqual(t, i, 5, "5 free failures")
				return r
			}
			d.requireError(r, http.StatusUnauthorized, "invalid_credentials")
		}
		t.Fatal("no backoff after 12 failures")
		return nil
	}
	known := fail(a.email)
	right := c.fresh().do("POST", "/auth/login", map[string]string{"email": a.email, "password": a.password})
	unknown := fail(c.email("ghost"))
	for _, r := range []*confResp{known, unknown, right} {
		c.requireError(r, http.StatusTooManyRequests, "rate_limited")
		ra, err := strconv.Atoi(r.hdr.Get("Retry-After"))
		require.NoError(t, err, "Retry-After: %s", r)
		require.GreaterOrEqual(t, ra, 1)
	}
	require.Equal(t, string(known.body), string(unknown.body))
	require.Equal(t, headerNames(known), headerNames(unknown))
}

func confHealth(t *testing.T, c *confClient) {
	r := c.do("GET", "/healthz", nil)
	require.Equal(t, http.StatusOK, r.code)
	r = c.do("GET", "/readyz", nil)
	require.Equal(t, http.StatusOK, r.code, "%s", r)
	m := c.obj(r)
	requireKeys(t, m, "status", "redis", "postgres")
	require.Equal(t, "ok", m["status"])
	require.Equal(t, "ok", m["redis"])
	require.Equal(t, "ok", m["postgres"])
}

// Google login is off without GOOGLE_CLIENT_ID: /auth/google/* answer 404.
func confGoogleOff(t *testing.T, c *confClient) {
	a := c.user("g")
	for _, p := range []string{"/auth/google/login", "/auth/google/callback?state=x&code=y", "/auth/google/link"} {
		r := c.do("GET", p, nil, withCookie(a.cookie))
		c.requireError(r, http.StatusNotFound, "")
	}
}

// API.md's metric names, on the metrics listener, after some activity.
func confMetrics(t *testing.T, c *confClient) {
	a := c.user("metrics")
	c.login(a.email, a.password)
	c.requireError(c.do("POST", "/auth/login", map[string]string{"email": a.email, "password": "wrong password!"}), http.StatusUnauthorized, "")
	ws, _ := c.ws(c.token(a))
	c.send(ws, map[string]any{"type": "publish", "channel": "room:metrics", "data": 1, "id": 1})
	c.frame(ws)
	require.Equal(t, http.StatusNoContent, c.do("POST", "/auth/logout", nil, as(a)).code)
	c.closed(ws)

	resp, err := c.http.Get(c.h.srv.metrics + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, name := range []string{
		"sessionhub_hub_connections ", "sessionhub_hub_connects_total{", "sessionhub_hub_disconnects_total{",
		"sessionhub_hub_revoke_close_seconds_bucket", "sessionhub_hub_messages_total{",
		"sessionhub_sessions_created_total{", "sessionhub_sessions_revoked_total{",
		`sessionhub_auth_logins_total{method="password",result="success"}`,
		`sessionhub_auth_logins_total{method="password",result="failure"}`,
		"sessionhub_tokens_issued_total{", "sessionhub_http_request_duration_seconds_bucket{",
		"sessionhub_redis_pubsub_reconnects_total", "go_goroutines", "process_cpu_seconds_total",
	} {
		require.Contains(t, text, name)
	}
	require.Regexp(t, `sessionhub_sessions_created_total\{method="password"\}`, text)
	require.Regexp(t, `sessionhub_sessions_revoked_total\{reason="logout"\}`, text)
	require.Regexp(t, `sessionhub_hub_messages_total\{direction="[a-z]+"\}`, text)
}
