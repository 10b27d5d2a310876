package auth

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/sessions"
)

// TestSignupShape checks API.md's signup body, the cookie attributes
// (SECURITY.md 7), no-store (8), and that the body holds no secret (3).
func TestSignupShape(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	email := hEmail("Shape")
	r := b.do(t, "POST", "/auth/signup", map[string]any{"email": email, "password": hPassword, "name": "Ada"},
		"User-Agent", "test-agent/1")
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	m := r.json(t)
	require.ElementsMatch(t, []string{"user", "session", "csrf_token"}, keysOf(m))
	u := m["user"].(map[string]any)
	require.ElementsMatch(t, []string{"id", "email", "name", "created_at"}, keysOf(u))
	require.Equal(t, email, u["email"])
	require.Equal(t, "Ada", u["name"])
	s := m["session"].(map[string]any)
	require.ElementsMatch(t, []string{"id", "kind", "created_at", "last_seen_at", "expires_at", "ip", "user_agent", "device", "current"}, keysOf(s))
	require.Equal(t, "browser", s["kind"])
	require.Equal(t, true, s["current"])
	require.Equal(t, "127.0.0.1", s["ip"])
	require.Equal(t, "test-agent/1", s["user_agent"])
	require.NotEmpty(t, m["csrf_token"])

	c := r.sessionCookie()
	require.Regexp(t, `^__Host-sessionhub=[A-Za-z0-9_-]{22}\.shs_[A-Za-z0-9_-]{43}; Path=/; Max-Age=43200; HttpOnly; Secure; SameSite=None$`, c)
	require.NotContains(t, strings.ToLower(c), "domain")
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	tok := strings.SplitN(strings.TrimPrefix(c, CookieName+"="), ";", 2)[0]
	_, secret, _ := strings.Cut(tok, ".")
	require.NotContains(t, string(r.body), secret)
	require.NotContains(t, string(r.body), "shs_")
	require.Len(t, r.header.Values("Set-Cookie"), 1)
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestCookieConfig checks that SameSite and Partitioned follow the config.
func TestCookieConfig(t *testing.T) {
	t.Parallel()
	b := hSetup(t, func(c *Config, _ *Deps) { c.CookieSameSite = http.SameSiteLaxMode; c.CookiePartitioned = true })
	r := b.do(t, "POST", "/auth/signup", map[string]any{"email": hEmail("lax"), "password": hPassword})
	require.Equal(t, http.StatusCreated, r.status)
	c := r.sessionCookie()
	require.Contains(t, c, "; SameSite=Lax")
	require.Contains(t, c, "; Partitioned")
	require.Contains(t, c, "; Secure")
	require.Contains(t, c, "; HttpOnly")
}

func TestSignupErrors(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	email := hEmail("Taken")
	b.signup(t, email)
	cases := []struct {
		name   string
		body   any
		ct     string
		status int
		code   string
	}{
		{"bad email", map[string]any{"email": "not an email", "password": hPassword}, "", 400, "invalid_email"},
		{"display name", map[string]any{"email": "Bob <bob@x.io>", "password": hPassword}, "", 400, "invalid_email"},
		{"short password", map[string]any{"email": hEmail("s"), "password": "1234567"}, "", 400, "weak_password"},
		{"long password", map[string]any{"email": hEmail("l"), "password": strings.Repeat("a", 1025)}, "", 400, "weak_password"},
		{"taken, other case", map[string]any{"email": strings.ToUpper(email), "password": hPassword}, "", 409, "email_taken"},
		{"unknown field", map[string]any{"email": hEmail("u"), "password": hPassword, "admin": true}, "", 400, "bad_request"},
		{"wrong type", map[string]any{"email": 5, "password": hPassword}, "", 400, "bad_request"},
		{"malformed", `{"email": `, "", 400, "bad_request"},
		{"array", `[]`, "", 400, "bad_request"},
		{"trailing", `{"email":"a@b.c","password":"12345678"} {}`, "", 400, "bad_request"},
		{"content type", `{"email":"a@b.c","password":"12345678"}`, "text/plain", 415, "unsupported_media_type"},
		{"too large", `{"name":"` + strings.Repeat("x", 70<<10) + `"}`, "", 413, "too_large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h []string
			if tc.ct != "" {
				h = []string{"Content-Type", tc.ct}
			}
			r := b.do(t, "POST", "/auth/signup", tc.body, h...)
			require.Equal(t, tc.status, r.status, "%s", r.body)
			require.Equal(t, tc.code, r.errCode(t))
			require.Empty(t, r.sessionCookie())
		})
	}
	// 1024 bytes is allowed (SECURITY.md 31).
	r := b.do(t, "POST", "/auth/signup", map[string]any{"email": hEmail("max"), "password": strings.Repeat("é", 512)})
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
}

// TestLoginCreatesNewSession: a cookie sent with a login is never upgraded;
// the login makes a new session with a new id and secret (SECURITY.md 4).
func TestLoginCreatesNewSession(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	email := hEmail("fix")
	first := b.signup(t, email)
	r := b.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": hPassword},
		"Cookie", CookieName+"="+first.token)
	require.Equal(t, http.StatusOK, r.status)
	second := b.userFrom(t, email, r)
	require.NotEqual(t, first.sessID, second.sessID)
	require.NotEqual(t, first.token, second.token)
	require.NotEqual(t, first.csrf, second.csrf)
	// A planted (attacker-chosen) cookie is not adopted either.
	planted := sessions.NewToken().String()
	r = b.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": hPassword},
		"Cookie", CookieName+"="+planted)
	require.Equal(t, http.StatusOK, r.status)
	require.NotContains(t, r.sessionCookie(), planted)
	require.Equal(t, http.StatusUnauthorized, b.do(t, "GET", "/session", nil, "Cookie", CookieName+"="+planted).status)
}

// TestUnknownEmailLooksLikeWrongPassword: same status, body and header set,
// and one argon2id verification on both paths (SECURITY.md 32).
func TestUnknownEmailLooksLikeWrongPassword(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	email := hEmail("known")
	b.signup(t, email)

	try := func(email string) (*hResp, uint64) {
		before := b.srv.hash.count.Load()
		r := b.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": "wrong password"})
		return r, b.srv.hash.count.Load() - before
	}
	wrong, wrongHashes := try(email)
	unknown, unknownHashes := try(hEmail("nobody"))
	require.Equal(t, http.StatusUnauthorized, wrong.status)
	require.Equal(t, wrong.status, unknown.status)
	require.Equal(t, string(wrong.body), string(unknown.body))
	require.Equal(t, "invalid_credentials", wrong.errCode(t))
	require.Equal(t, headerShape(wrong.header), headerShape(unknown.header))
	require.EqualValues(t, 1, wrongHashes, "a wrong password is verified once")
	require.EqualValues(t, 1, unknownHashes, "an unknown email runs the dummy hash once")

	// A password-less account (external identity only) answers the same.
	_, err := b.srv.CreateUser(context.Background(), "nopass-"+email, "", "", nil)
	require.NoError(t, err)
	nopass, n := try("nopass-" + email)
	require.Equal(t, string(wrong.body), string(nopass.body))
	require.EqualValues(t, 1, n)
}

// headerShape is the header set with the values that legitimately differ
// between two responses (Date) blanked.
func headerShape(h http.Header) map[string][]string {
	out := map[string][]string{}
	for k, v := range h {
		if k == "Date" {
			v = []string{"*"}
		}
		out[k] = v
	}
	return out
}

// TestPasswordHashing checks the stored PHC parameters and that a weaker
// stored hash is upgraded on the next good login (SECURITY.md 30).
func TestPasswordHashing(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	ctx := context.Background()
	email := hEmail("phc")
	u := b.signup(t, email)
	var stored string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1`, u.id).Scan(&stored))
	require.Regexp(t, regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`), stored)
	require.NotContains(t, stored, hPassword)

	weak, err := b.srv.hash.hashWith(ctx, hPassword, argonParams{memory: 4096, time: 1, threads: 1})
	require.NoError(t, err)
	require.NoError(t, b.srv.users.SetPasswordHash(ctx, u.id, weak))
	// A wrong password never rewrites the hash.
	require.Equal(t, http.StatusUnauthorized, b.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": "nope nope nope"}).status)
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1`, u.id).Scan(&stored))
	require.Equal(t, weak, stored)
	b.login(t, email)
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1`, u.id).Scan(&stored))
	require.True(t, strings.HasPrefix(stored, "$argon2id$v=19$m=19456,t=2,p=1$"), stored)
	b.login(t, email) // the new hash verifies
}

// TestPasswordNeverTruncated: a long password's prefix is not the
// password, and the 1024-byte bound is checked before hashing
// (SECURITY.md 31).
func TestPasswordNeverTruncated(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	email := hEmail("long")
	long := strings.Repeat("p", 1000) + "END"
	r := b.do(t, "POST", "/auth/signup", map[string]any{"email": email, "password": long})
	require.Equal(t, http.StatusCreated, r.status)
	for _, pw := range []string{long[:72], long[:1000], long[:len(long)-1]} {
		r := b.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": pw})
		require.Equal(t, http.StatusUnauthorized, r.status, "prefix of %d bytes", len(pw))
	}
	require.Equal(t, http.StatusOK, b.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": long}).status)

	before := b.srv.hash.count.Load()
	r = b.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": long + strings.Repeat("x", 1024)})
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Equal(t, before, b.srv.hash.count.Load(), "an over-long password is refused before hashing")
	r = b.do(t, "POST", "/auth/signup", map[string]any{"email": hEmail("l2"), "password": strings.Repeat("x", 1025)})
	require.Equal(t, "weak_password", r.errCode(t))
	require.Equal(t, before, b.srv.hash.count.Load())
}

// TestPasswordChange: 204, every other session revoked, the caller's kept
// (SECURITY.md 16).
func TestPasswordChange(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	email := hEmail("pw")
	me := b.signup(t, email)
	other := b.login(t, email)
	third := b.login(t, email)

	r := me.do(t, "POST", "/auth/password", map[string]any{"current_password": "wrong wrong", "new_password": "new password 1"})
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Equal(t, "invalid_credentials", r.errCode(t))
	r = me.do(t, "POST", "/auth/password", map[string]any{"current_password": hPassword, "new_password": "short"})
	require.Equal(t, "weak_password", r.errCode(t))

	r = me.do(t, "POST", "/auth/password", map[string]any{"current_password": hPassword, "new_password": "new password 1"})
	require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
	require.Equal(t, http.StatusOK, me.do(t, "GET", "/session", nil).status)
	require.Equal(t, http.StatusUnauthorized, other.do(t, "GET", "/session", nil).status)
	require.Equal(t, http.StatusUnauthorized, third.do(t, "GET", "/session", nil).status)

	require.Equal(t, http.StatusUnauthorized, b.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": hPassword}).status)
	require.Equal(t, http.StatusOK, b.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": "new password 1"}).status)

	revoked := b.events(t, EventSessionRevoked, me.id)
	require.Len(t, revoked, 2)
	for _, e := range revoked {
		require.Equal(t, "password_change", e.Detail["reason"])
		require.NotEqual(t, me.sessID, e.SessionID)
	}
	require.Len(t, b.events(t, EventPasswordChanged, me.id), 1)
}

// TestMobileLoginRefreshReuse runs a device end to end: login with
// X-Client: mobile, refresh, grace retry, then theft-style reuse that
// revokes the device session and writes refresh_reuse.
func TestMobileLoginRefreshReuse(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	email := hEmail("mobile")
	web := b.signup(t, email)

	r := b.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": hPassword, "device": "Pixel 8"}, "X-Client", "mobile")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.Empty(t, r.sessionCookie())
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	m := r.json(t)
	require.ElementsMatch(t, []string{"user", "session", "refresh_token", "access_token", "expires_in"}, keysOf(m))
	sess := m["session"].(map[string]any)
	require.Equal(t, "refresh", sess["kind"])
	require.Equal(t, "Pixel 8", sess["device"])
	require.EqualValues(t, 300, m["expires_in"])
	rt0 := m["refresh_token"].(string)
	require.Regexp(t, `^[A-Za-z0-9_-]+\.shr_[A-Za-z0-9_-]{43}$`, rt0)
	claims, err := b.srv.tokens.Verify(m["access_token"].(string))
	require.NoError(t, err)
	require.Equal(t, sess["id"], claims.SessionID)

	// The access token is no session.
	require.Equal(t, http.StatusUnauthorized, b.do(t, "GET", "/session", nil, "Authorization", "Bearer "+m["access_token"].(string)).status)

	r = b.do(t, "POST", "/auth/refresh", map[string]any{"refresh_token": rt0})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	m1 := r.json(t)
	require.ElementsMatch(t, []string{"refresh_token", "access_token", "expires_in"}, keysOf(m1))
	rt1 := m1["refresh_token"].(string)
	require.NotEqual(t, rt0, rt1)
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))

	// A retry within the grace window gets the same successor.
	r = b.do(t, "POST", "/auth/refresh", map[string]any{"refresh_token": rt0})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.Equal(t, rt1, r.json(t)["refresh_token"])

	require.Equal(t, "invalid_token", b.do(t, "POST", "/auth/refresh", map[string]any{"refresh_token": "x.shr_nope"}).errCode(t))

	// Past the grace window, the old token is theft: the device is revoked.
	b.clock.Advance(time.Minute)
	r = b.do(t, "POST", "/auth/refresh", map[string]any{"refresh_token": rt0})
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Equal(t, "invalid_token", r.errCode(t))
	r = b.do(t, "POST", "/auth/refresh", map[string]any{"refresh_token": rt1})
	require.Equal(t, http.StatusUnauthorized, r.status, "the whole family is dead")
	st, err := b.store.Status(context.Background(), []string{sess["id"].(string)})
	require.NoError(t, err)
	require.Equal(t, sessions.StatusRevoked, st[0])
	reuse := b.events(t, EventRefreshReuse, web.id)
	require.Len(t, reuse, 1)
	require.Equal(t, sess["id"], reuse[0].SessionID)
	revoked := b.events(t, EventSessionRevoked, web.id)
	require.Len(t, revoked, 1)
	require.Equal(t, "refresh_reuse", revoked[0].Detail["reason"])
	require.Len(t, b.events(t, EventRefreshRotated, web.id), 2)
	// The web session is untouched.
	require.Equal(t, http.StatusOK, web.do(t, "GET", "/session", nil).status)
}

// TestLoginAudit checks login_succeeded / login_failed rows.
func TestLoginAudit(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	email := hEmail("aud")
	u := b.signup(t, email)
	require.Equal(t, http.StatusUnauthorized, b.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": "bad password"}).status)
	in := b.login(t, email)
	failed := b.events(t, EventLoginFailed, u.id)
	require.Len(t, failed, 1)
	require.Equal(t, "failure", failed[0].Detail["result"])
	ok := b.events(t, EventLoginSucceeded, u.id)
	require.Len(t, ok, 1)
	require.Equal(t, in.sessID, ok[0].SessionID)
	require.Equal(t, "127.0.0.1", ok[0].IP)
	require.True(t, slices.ContainsFunc(b.events(t, EventSessionCreated, u.id), func(e AuditEvent) bool { return e.SessionID == in.sessID }))
	require.Len(t, b.events(t, EventSignup, u.id), 1)
}
