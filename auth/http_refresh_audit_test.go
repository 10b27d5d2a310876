package auth

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// mobileLogin logs email in as a mobile device and returns its session id
// and first refresh token.
func mobileLogin(t *testing.T, b *hBundle, email string) (sid, rt string) {
	t.Helper()
	r := b.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": hPassword, "device": "Pixel 8"}, "X-Client", "mobile")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	m := r.json(t)
	return m["session"].(map[string]any)["id"].(string), m["refresh_token"].(string)
}

// TestRefreshFailuresAudited: a refused refresh is a refresh login failure
// in the audit log (and so in the logins report, like the metric); a reuse
// is recorded with its user even when the session was already revoked.
func TestRefreshFailuresAudited(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	u := b.signup(t, hEmail("rfaudit"))
	sid, rt0 := mobileLogin(t, b, u.email)
	id0, _, _ := strings.Cut(rt0, ".")

	refresh := func(tok string) *hResp {
		t.Helper()
		return b.do(t, "POST", "/auth/refresh", map[string]any{"refresh_token": tok})
	}
	for _, tok := range []string{
		"x.shr_nope",                         // malformed
		newRefreshToken().String(),           // well-formed, unknown
		id0 + "." + newRefreshToken().secret, // known id, wrong secret
	} {
		r := refresh(tok)
		require.Equal(t, http.StatusUnauthorized, r.status, tok)
		require.Equal(t, "invalid_token", r.errCode(t), tok)
	}
	failed := b.events(t, EventLoginFailed, "")
	require.Len(t, failed, 3)
	for _, e := range failed {
		require.Equal(t, map[string]any{"method": "refresh", "result": "failure", "reason": "invalid_token"}, e.Detail)
		require.Empty(t, e.UserID)
		require.Empty(t, e.SessionID)
	}
	require.Equal(t, 3.0, b.counter(t, "sessionhub_auth_logins_total", map[string]string{"method": "refresh", "result": "failure"}))

	r := refresh(rt0)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	rt1 := r.json(t)["refresh_token"].(string)

	// Past the grace window rt0 is theft: the session is revoked and the
	// reuse recorded against the user. Replayed again, the session is
	// already revoked; the reuse still names the user.
	b.clock.Advance(time.Minute)
	for range 2 {
		require.Equal(t, "invalid_token", refresh(rt0).errCode(t))
	}
	reuse := b.events(t, EventRefreshReuse, u.id)
	require.Len(t, reuse, 2)
	for _, e := range reuse {
		require.Equal(t, sid, e.SessionID)
	}
	require.Nil(t, reuse[0].Detail["already_revoked"])
	require.Equal(t, true, reuse[1].Detail["already_revoked"])
	require.Len(t, b.events(t, EventSessionRevoked, u.id), 1, "revoked once")

	// The successor of a revoked family: the session has ended.
	require.Equal(t, "invalid_token", refresh(rt1).errCode(t))
	ended := b.events(t, EventLoginFailed, u.id)
	require.Len(t, ended, 1)
	require.Equal(t, sid, ended[0].SessionID)
	require.Equal(t, "session_ended", ended[0].Detail["reason"])
	require.Equal(t, 6.0, b.counter(t, "sessionhub_auth_logins_total", map[string]string{"method": "refresh", "result": "failure"}))
}

// TestRefreshIPRateLimit: /auth/refresh spends a per-IP budget (the login
// budget's size, in a bucket of its own), so a flood of garbage tokens is
// refused before it reaches Postgres or the audit log.
func TestRefreshIPRateLimit(t *testing.T) {
	t.Parallel()
	b := hSetup(t, func(c *Config, _ *Deps) { c.LoginsPerIP = 3 })
	for range 3 {
		r := b.do(t, "POST", "/auth/refresh", map[string]any{"refresh_token": newRefreshToken().String()})
		require.Equal(t, http.StatusUnauthorized, r.status)
	}
	r := b.do(t, "POST", "/auth/refresh", map[string]any{"refresh_token": newRefreshToken().String()})
	require.Equal(t, http.StatusTooManyRequests, r.status)
	require.Equal(t, "rate_limited", r.errCode(t))
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, ra, 1)
	require.Len(t, b.events(t, EventLoginFailed, ""), 3, "a refused attempt writes nothing")

	// Logins keep their own budget.
	r = b.do(t, "POST", "/auth/login", map[string]any{"email": hEmail("nobody"), "password": hPassword})
	require.Equal(t, http.StatusUnauthorized, r.status, "%s", r.body)
}
