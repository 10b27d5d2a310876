package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var reportRoutes = []string{
	"/admin/events", "/admin/reports/logins", "/admin/reports/sessions", "/admin/reports/revocations",
}

// TestReportRoutesGuards runs the audit-log and report routes through the
// real Server: only a session with the admin scope gets in — by cookie, or
// as a service session with "Authorization: Session" and no CSRF token;
// a bearer JWT is not a session (401), a plain user is refused (403).
func TestReportRoutesGuards(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	ctx := context.Background()
	admin := b.admin(t)
	user := b.signup(t, hEmail("plain"))
	svc, err := b.srv.CreateServiceSession(ctx, admin.email, "bff", []string{"admin"})
	require.NoError(t, err)
	plainSvc, err := b.srv.CreateServiceSession(ctx, user.email, "worker", nil)
	require.NoError(t, err)
	tok := user.do(t, "POST", "/session/token", nil)
	require.Equal(t, http.StatusOK, tok.status, "%s", tok.body)
	jwt := tok.json(t)["token"].(string)
	adminTok := admin.do(t, "POST", "/session/token", nil)
	require.Equal(t, http.StatusOK, adminTok.status, "%s", adminTok.body)
	adminJWT := adminTok.json(t)["token"].(string)

	for _, path := range reportRoutes {
		r := admin.do(t, "GET", path, nil)
		require.Equal(t, http.StatusOK, r.status, "%s: %s", path, r.body)
		require.Equal(t, "application/json", r.header.Get("Content-Type"))

		r = b.do(t, "GET", path, nil, "Authorization", "Session "+svc)
		require.Equal(t, http.StatusOK, r.status, "service session with admin scope, no CSRF: %s: %s", path, r.body)

		r = b.do(t, "GET", path, nil)
		require.Equal(t, http.StatusUnauthorized, r.status, path)
		require.Equal(t, "unauthenticated", r.errCode(t))

		for _, bearer := range []string{jwt, adminJWT} {
			r = b.do(t, "GET", path, nil, "Authorization", "Bearer "+bearer)
			require.Equal(t, http.StatusUnauthorized, r.status, "a JWT is not a session: %s", path)
		}

		r = user.do(t, "GET", path, nil)
		require.Equal(t, http.StatusForbidden, r.status, path)
		require.Equal(t, "forbidden", r.errCode(t))
		r = b.do(t, "GET", path, nil, "Authorization", "Session "+plainSvc)
		require.Equal(t, http.StatusForbidden, r.status, path)

		// Errors stay JSON when CSV is asked for.
		r = admin.do(t, "GET", path+"?since=nope", nil, "Accept", "text/csv")
		require.Equal(t, http.StatusBadRequest, r.status, path)
		require.Equal(t, "bad_request", r.errCode(t))
	}
}

// TestReportRoutesCountRealTraffic drives logins, logouts and a refresh
// reuse through the API and checks the reports count exactly them: the
// writer (audit.go and the handlers) and the reader agree on the events'
// shape.
func TestReportRoutesCountRealTraffic(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	ctx := context.Background()
	admin := b.admin(t) // signup (browser session) + login (password success)
	alice := b.signup(t, hEmail("alice"))
	r := b.do(t, "POST", "/auth/login", map[string]any{"email": alice.email, "password": "wrong password!"})
	require.Equal(t, http.StatusUnauthorized, r.status)
	r = b.do(t, "POST", "/auth/login", map[string]any{"email": alice.email, "password": hPassword, "device": "Pixel 8"},
		"X-Client", "mobile")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	rt1 := r.json(t)["refresh_token"].(string)
	r = b.do(t, "POST", "/auth/refresh", map[string]any{"refresh_token": rt1})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	rt2 := r.json(t)["refresh_token"].(string)
	r = b.do(t, "POST", "/auth/refresh", map[string]any{"refresh_token": rt2})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	// rt1 is two generations old: reuse, the device session is revoked.
	r = b.do(t, "POST", "/auth/refresh", map[string]any{"refresh_token": rt1})
	require.Equal(t, http.StatusUnauthorized, r.status, "%s", r.body)
	// An unknown token: a refresh failure written as login_failed.
	r = b.do(t, "POST", "/auth/refresh", map[string]any{"refresh_token": newRefreshToken().String()})
	require.Equal(t, http.StatusUnauthorized, r.status, "%s", r.body)
	r = alice.do(t, "POST", "/auth/logout", nil)
	require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
	_, err := b.srv.CreateServiceSession(ctx, admin.email, "bff", []string{"admin"})
	require.NoError(t, err)
	// The clock is frozen; reports cover [now-24h, now).
	b.clock.Advance(time.Second)

	type key struct{ a, b string }
	sum := func(path string, k func(map[string]any) key, field string) map[key]float64 {
		t.Helper()
		r := admin.do(t, "GET", path+"?bucket=day", nil)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		var body struct{ Rows []map[string]any }
		require.NoError(t, json.Unmarshal(r.body, &body))
		out := map[key]float64{}
		for _, row := range body.Rows {
			out[k(row)] += row[field].(float64)
		}
		return out
	}
	logins := sum("/admin/reports/logins", func(m map[string]any) key {
		return key{m["method"].(string), m["result"].(string)}
	}, "count")
	require.Equal(t, map[key]float64{
		{"password", "success"}: 2, // admin's login, alice's mobile login
		{"password", "failure"}: 1,
		{"refresh", "success"}:  2,
		{"refresh", "failure"}:  2, // the reuse, the unknown token
		{"service", "success"}:  1, // the worker's session: a service's login
	}, logins)

	created := sum("/admin/reports/sessions", func(m map[string]any) key { return key{m["kind"].(string), ""} }, "created")
	require.Equal(t, map[key]float64{
		{"browser", ""}: 3, // two signups, one login
		{"refresh", ""}: 1,
		{"service", ""}: 1,
	}, created)

	revoked := sum("/admin/reports/revocations", func(m map[string]any) key { return key{m["reason"].(string), ""} }, "count")
	require.Equal(t, map[key]float64{{"refresh_reuse", ""}: 1, {"logout", ""}: 1}, revoked)

	// The audit log pages newest first through the same guards; CSV too.
	r = admin.do(t, "GET", "/admin/events?user_id="+alice.id+"&type=login_failed", nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var page EventsPage
	require.NoError(t, json.Unmarshal(r.body, &page))
	require.Len(t, page.Events, 1)
	require.Equal(t, alice.id, *page.Events[0].UserID)
	require.Nil(t, page.NextCursor)
	r = admin.do(t, "GET", "/admin/events?limit=1", nil, "Accept", "text/csv")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.Equal(t, "text/csv; charset=utf-8", r.header.Get("Content-Type"))
	require.True(t, strings.HasPrefix(string(r.body), "id,at,type,user_id,session_id,ip,user_agent,detail\n"))
	require.NotEmpty(t, r.header.Get("X-Next-Cursor"))
}
