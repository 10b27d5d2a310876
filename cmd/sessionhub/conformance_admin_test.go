package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

// confAdminChecks are API.md's "Admin routes" and "Command line": they need
// Redis + Postgres (admins are made with the CLI; reports come from
// Postgres).
func confAdminChecks() []confCheck {
	return []confCheck{
		{name: "admin-guard", rp: true, fn: confAdminGuard},
		{name: "admin-users-search", rp: true, fn: confAdminUsers},
		{name: "admin-create-user", rp: true, fn: confAdminCreateUser},
		{name: "admin-logout-all", rp: true, fn: confAdminLogoutAll},
		{name: "admin-delete-session", rp: true, fn: confAdminDeleteSession},
		{name: "admin-stats", rp: true, fn: confAdminStats},
		{name: "admin-events", rp: true, fn: confAdminEvents},
		{name: "admin-reports", rp: true, fn: confAdminReports},
		{name: "cli", rp: true, fn: confCLI},
	}
}

// cli runs a command line on the harness's stores (cli_test.go's helper).
func (c *confClient) cli(stdin string, args ...string) (string, string, int) {
	c.t.Helper()
	return cli(c.t, c.h.env, stdin, args...)
}

// admin makes an admin with the CLI and logs it in over HTTP.
func (c *confClient) admin() *confAccount {
	c.t.Helper()
	email := c.email("admin")
	_, stderr, code := c.cli(confPassword+"\n", "user", "add", "--email", email, "--admin")
	require.Equal(c.t, 0, code, stderr)
	return c.login(email, confPassword)
}

// service makes a service session for a fresh user holding scopes and
// returns its <id>.<secret> token.
func (c *confClient) service(name string, scopes ...string) (string, string) {
	c.t.Helper()
	email := c.email("svc")
	_, stderr, code := c.cli(confPassword+"\n", "user", "add", "--email", email)
	require.Equal(c.t, 0, code, stderr)
	_, stderr, code = c.cli("", append([]string{"user", "grant", "--email", email, "--scope"}, scopes...)...)
	require.Equal(c.t, 0, code, stderr)
	stdout, stderr, code := c.cli("", append([]string{"session", "create", "--email", email, "--service", name, "--scope"}, scopes...)...)
	require.Equal(c.t, 0, code, stderr)
	require.Regexp(c.t, `^[A-Za-z0-9_-]{22}\.shs_[A-Za-z0-9_-]{43}\n$`, stdout, "the token alone on stdout")
	return strings.TrimSpace(stdout), email
}

func confAdminGuard(t *testing.T, c *confClient) {
	admin := c.admin()
	user := c.user("plain")
	routes := []struct{ method, path string }{
		{"GET", "/admin/users"}, {"GET", "/admin/users/" + user.userID + "/sessions"}, {"GET", "/admin/stats"},
		{"POST", "/admin/users/" + user.userID + "/logout-all"}, {"DELETE", "/admin/sessions/" + user.sid},
		{"GET", "/admin/events"}, {"GET", "/admin/reports/logins"}, {"GET", "/admin/reports/sessions"},
		{"GET", "/admin/reports/revocations"},
	}
	adminJWT := c.token(admin)
	for _, rt := range routes {
		c.requireError(c.do(rt.method, rt.path, nil), http.StatusUnauthorized, "unauthenticated")
		c.requireError(c.do(rt.method, rt.path, nil, as(user)), http.StatusForbidden, "forbidden")
		c.requireError(c.do(rt.method, rt.path, nil, withBearer(adminJWT)), http.StatusUnauthorized, "unauthenticated")
	}
	c.requireError(c.do("POST", "/admin/users", map[string]string{"email": c.email("x")}, as(user)), http.StatusForbidden, "forbidden")
	c.requireError(c.do("POST", "/admin/users", map[string]string{"email": c.email("x")}, withBearer(adminJWT)), http.StatusUnauthorized, "unauthenticated")
	// Cookie-authenticated admin mutations need CSRF.
	c.requireError(c.do("POST", "/admin/users", map[string]string{"email": c.email("x")}, withCookie(admin.cookie)), http.StatusForbidden, "csrf")
	require.Equal(t, http.StatusOK, c.do("GET", "/admin/users/"+user.userID+"/sessions", nil, as(admin)).code)
	r := c.do("GET", "/admin/users/"+user.userID+"/sessions", nil, as(admin))
	m := c.obj(r)
	requireKeys(t, m, "sessions")
	list := m["sessions"].([]any)
	require.Len(t, list, 1)
	require.Equal(t, user.sid, requireSession(t, list[0])["id"])

	// A service session with the admin scope: Authorization: Session, no CSRF.
	tok, _ := c.service("admin-bot", "admin")
	r = c.do("GET", "/admin/users?limit=1", nil, withSessionAuth(tok))
	require.Equal(t, http.StatusOK, r.code, "%s", r)
	r = c.do("POST", "/admin/users", map[string]string{"email": c.email("bot-made")}, withSessionAuth(tok))
	require.Equal(t, http.StatusCreated, r.code, "%s", r)
}

func confAdminUsers(t *testing.T, c *confClient) {
	admin := c.admin()
	tag := fmt.Sprintf("zq%d", c.h.next())
	create := func(name string) string {
		t.Helper()
		r := c.do("POST", "/admin/users", map[string]string{"email": c.email("srch"), "name": name}, as(admin))
		require.Equal(t, http.StatusCreated, r.code, "%s", r)
		return str(c.obj(r)["user"].(map[string]any)["id"])
	}
	pct := create(tag + "%x")
	create(tag + "AAx") // matches "%" if it were a wildcard
	und := create(tag + "_y")
	create(tag + "By") // matches "_" if it were a wildcard
	search := func(query string) ([]string, any) {
		t.Helper()
		r := c.do("GET", "/admin/users?q="+q(query), nil, as(admin))
		require.Equal(t, http.StatusOK, r.code, "%s", r)
		m := c.obj(r)
		requireKeys(t, m, "users", "next_cursor")
		var ids []string
		for _, u := range m["users"].([]any) {
			ids = append(ids, str(requireUser(t, u)["id"]))
		}
		return ids, m["next_cursor"]
	}
	ids, next := search(tag + "%")
	require.Equal(t, []string{pct}, ids, "%% is literal")
	require.Nil(t, next, "next_cursor is null on the last page")
	ids, _ = search(tag + "_")
	require.Equal(t, []string{und}, ids, "_ is literal")
	ids, _ = search(strings.ToUpper(tag))
	require.Len(t, ids, 4, "case-insensitive substring of the name")
	// Email substring matches too.
	r := c.do("GET", "/admin/users?q="+q(strings.SplitN(admin.email, "@", 2)[0]), nil, as(admin))
	require.Len(t, c.obj(r)["users"], 1)

	// Paging: limit 3 over 4 matches → a cursor, then the last page's null.
	r = c.do("GET", "/admin/users?limit=3&q="+q(tag), nil, as(admin))
	m := c.obj(r)
	require.Len(t, m["users"], 3)
	cursor, ok := m["next_cursor"].(string)
	require.True(t, ok, "a string cursor when more remain: %s", r)
	r = c.do("GET", "/admin/users?limit=3&q="+q(tag)+"&cursor="+q(cursor), nil, as(admin))
	m = c.obj(r)
	require.Len(t, m["users"], 1)
	require.Contains(t, string(r.body), `"next_cursor":null`)
	// Exactly a full last page: null too.
	r = c.do("GET", "/admin/users?limit=4&q="+q(tag), nil, as(admin))
	require.Contains(t, string(r.body), `"next_cursor":null`)
	// No match: users is [], never null.
	r = c.do("GET", "/admin/users?q=nobody-"+tag, nil, as(admin))
	require.Contains(t, string(r.body), `"users":[]`)
	c.requireError(c.do("GET", "/admin/users?limit=abc", nil, as(admin)), http.StatusBadRequest, "")
	c.requireError(c.do("GET", "/admin/users?cursor=%25%25", nil, as(admin)), http.StatusBadRequest, "")
}

func confAdminCreateUser(t *testing.T, c *confClient) {
	admin := c.admin()
	email := c.email("Made")
	r := c.do("POST", "/admin/users", map[string]any{"email": email, "name": "Made", "password": confPassword, "scopes": []string{"sub:feed:*"}}, as(admin))
	require.Equal(t, http.StatusCreated, r.code, "%s", r)
	m := c.obj(r)
	requireKeys(t, m, "user")
	u := requireUser(t, m["user"])
	require.Equal(t, email, u["email"])
	c.requireError(c.do("POST", "/admin/users", map[string]any{"email": strings.ToUpper(email)}, as(admin)), http.StatusConflict, "email_taken")
	c.requireError(c.do("POST", "/admin/users", map[string]any{"email": "bad"}, as(admin)), http.StatusBadRequest, "invalid_email")
	// The created user logs in and its sessions carry the given scopes.
	made := c.login(email, confPassword)
	claims := c.verifyJWT(c.token(made))
	require.Contains(t, strings.Fields(str(claims["scope"])), "sub:feed:*")
	// Without a password: created, but cannot log in with one.
	r = c.do("POST", "/admin/users", map[string]any{"email": c.email("nopw")}, as(admin))
	require.Equal(t, http.StatusCreated, r.code, "%s", r)
}

func confAdminLogoutAll(t *testing.T, c *confClient) {
	admin := c.admin()
	victim := c.user("victim")
	second := c.login(victim.email, victim.password)
	ws := c.srv().socket(victim.cookie, victim.csrf)
	r := c.do("POST", "/admin/users/"+victim.userID+"/logout-all", nil, as(admin))
	require.Equal(t, http.StatusOK, r.code, "%s", r)
	m := c.obj(r)
	requireKeys(t, m, "sessions_revoked", "sockets_closed", "nodes_acked")
	require.EqualValues(t, 2, m["sessions_revoked"])
	require.GreaterOrEqual(t, m["sockets_closed"], float64(1))
	require.EqualValues(t, 1, m["nodes_acked"])
	code, reason := c.closed(ws)
	require.EqualValues(t, 4002, code)
	require.Equal(t, "logged out everywhere", reason)
	c.requireError(c.do("GET", "/session", nil, withCookie(second.cookie)), http.StatusUnauthorized, "unauthenticated")
	c.requireError(c.do("POST", "/admin/users/00000000-0000-4000-8000-000000000000/logout-all", nil, as(admin)), http.StatusNotFound, "")
	c.requireError(c.do("POST", "/admin/users/garbage/logout-all", nil, as(admin)), http.StatusNotFound, "")
	// The admin's own session is untouched.
	require.Equal(t, http.StatusOK, c.do("GET", "/session", nil, withCookie(admin.cookie)).code)
}

func confAdminDeleteSession(t *testing.T, c *confClient) {
	admin := c.admin()
	victim := c.user("target")
	ws := c.srv().socket(victim.cookie, victim.csrf)
	r := c.do("DELETE", "/admin/sessions/"+victim.sid, nil, as(admin))
	require.Equal(t, http.StatusOK, r.code, "%s", r)
	m := c.obj(r)
	requireKeys(t, m, "sockets_closed", "nodes_acked")
	require.EqualValues(t, 1, m["sockets_closed"])
	require.EqualValues(t, 1, m["nodes_acked"])
	code, reason := c.closed(ws)
	require.EqualValues(t, 4001, code)
	require.Equal(t, "session revoked", reason)
	c.requireError(c.do("GET", "/session", nil, withCookie(victim.cookie)), http.StatusUnauthorized, "unauthenticated")
	c.requireError(c.do("DELETE", "/admin/sessions/"+victim.sid, nil, as(admin)), http.StatusNotFound, "")
	c.requireError(c.do("DELETE", "/admin/sessions/garbage", nil, as(admin)), http.StatusNotFound, "")
}

func confAdminStats(t *testing.T, c *confClient) {
	admin := c.admin()
	u := c.user("stats")
	_, w := c.ws(c.token(u))
	r := c.do("GET", "/admin/stats", nil, as(admin))
	require.Equal(t, http.StatusOK, r.code, "%s", r)
	m := c.obj(r)
	requireKeys(t, m, "nodes", "connections", "sessions_active")
	nodes := m["nodes"].([]any)
	require.Len(t, nodes, 1, "one live node shares this prefix")
	n := nodes[0].(map[string]any)
	requireKeys(t, n, "id", "connections", "started_at")
	require.Equal(t, w["node"], n["id"], "the node id is the welcome's node")
	requireTime(t, n["started_at"], "started_at")
	require.Equal(t, n["connections"], m["connections"], "connections summed over the nodes")
	// The exact live count is asserted on a quiet server (TestConformanceRefreshNoGrace):
	// here other checks open and close sockets on the same node.
	require.GreaterOrEqual(t, m["sessions_active"], float64(2))
}

func confAdminEvents(t *testing.T, c *confClient) {
	admin := c.admin()
	u := c.user("audited")
	r := c.do("GET", "/admin/events?user_id="+u.userID, nil, as(admin))
	require.Equal(t, http.StatusOK, r.code, "%s", r)
	m := c.obj(r)
	requireKeys(t, m, "events", "next_cursor")
	events := m["events"].([]any)
	types := map[string]bool{}
	for _, x := range events {
		e := x.(map[string]any)
		requireKeys(t, e, "id", "at", "type", "user_id", "session_id", "ip", "user_agent", "detail")
		require.Equal(t, u.userID, e["user_id"])
		requireTime(t, e["at"], "at")
		_, isObj := e["detail"].(map[string]any)
		require.True(t, isObj, "detail is a JSON object: %v", e)
		types[str(e["type"])] = true
	}
	require.True(t, types["signup"] && types["session_created"], "signup events: %s", r)
	r = c.do("GET", "/admin/events?type=signup&user_id="+u.userID, nil, as(admin))
	require.Len(t, c.obj(r)["events"], 1)
	r = c.do("GET", "/admin/events?limit=1&user_id="+u.userID, nil, as(admin))
	m = c.obj(r)
	require.Len(t, m["events"], 1)
	require.IsType(t, "", m["next_cursor"], "a cursor while more events remain")
	r = c.do("GET", "/admin/events?user_id="+u.userID, nil, as(admin), withHeader("Accept", "text/csv"))
	require.Equal(t, http.StatusOK, r.code)
	require.True(t, strings.HasPrefix(r.hdr.Get("Content-Type"), "text/csv"), r.hdr.Get("Content-Type"))
	c.requireError(c.do("GET", "/admin/events?type=nonsense", nil, as(admin)), http.StatusBadRequest, "")
	c.requireError(c.do("GET", "/admin/events?since=yesterday", nil, as(admin), withHeader("Accept", "text/csv")), http.StatusBadRequest, "")
}

func confAdminReports(t *testing.T, c *confClient) {
	admin := c.admin()
	cols := map[string][]string{
		"logins":      {"bucket_start", "method", "result", "count"},
		"sessions":    {"bucket_start", "kind", "created", "revoked", "active_at_end"},
		"revocations": {"bucket_start", "reason", "count"},
	}
	for name, want := range cols {
		base := "/admin/reports/" + name
		for _, bucket := range []string{"", "&bucket=hour", "&bucket=day"} {
			r := c.do("GET", base+"?x=1"+bucket, nil, as(admin))
			require.Equal(t, http.StatusOK, r.code, "%s %s", base, r)
			var body struct {
				Rows []map[string]any `json:"rows"`
			}
			require.NoError(t, json.Unmarshal(r.body, &body))
			require.Regexp(t, `"rows":\[`, string(r.body), "rows is an array")
			for _, row := range body.Rows {
				for _, k := range want {
					require.Contains(t, row, k, "%s row %v", name, row)
				}
				bs := requireTime(t, row["bucket_start"], "bucket_start")
				_, off := bs.Zone()
				require.Zero(t, off, "UTC buckets")
				require.Zero(t, bs.Minute()+bs.Second()+bs.Nanosecond(), "hour-aligned: %v", bs)
				if bucket == "&bucket=day" {
					require.Zero(t, bs.Hour(), "day-aligned: %v", bs)
				}
			}
			if name == "logins" {
				require.NotEmpty(t, body.Rows, "the admin's own login is in the last 24 h")
			}
		}
		// Empty ranges: [] never null.
		r := c.do("GET", base+"?since=2001-01-01T00:00:00Z&until=2001-01-02T00:00:00Z", nil, as(admin))
		require.Equal(t, http.StatusOK, r.code, "%s", r)
		require.Regexp(t, `"rows":\[\]`, string(r.body))
		// CSV.
		r = c.do("GET", base, nil, as(admin), withHeader("Accept", "text/csv"))
		require.Equal(t, http.StatusOK, r.code, "%s", r)
		require.True(t, strings.HasPrefix(r.hdr.Get("Content-Type"), "text/csv"), r.hdr.Get("Content-Type"))
		require.True(t, strings.HasPrefix(string(r.body), strings.Join(want, ",")), "CSV header: %q", r.body)
		// Bad ranges are 400s, JSON even when CSV was asked for.
		for _, bad := range []string{
			"?since=yesterday", "?until=2024-13-01T00:00:00Z", "?since=2024-01-02T00:00:00Z&until=2024-01-01T00:00:00Z",
			"?bucket=week", "?bucket=", "?since=2024-01-01",
		} {
			if bad == "?bucket=" {
				continue // an empty bucket is the default
			}
			c.requireError(c.do("GET", base+bad, nil, as(admin)), http.StatusBadRequest, "")
			c.requireError(c.do("GET", base+bad, nil, as(admin), withHeader("Accept", "text/csv")), http.StatusBadRequest, "")
		}
	}
}

// confCLI covers API.md's command line table on the harness's stores.
func confCLI(t *testing.T, c *confClient) {
	// user add: the password is the first line of stdin.
	email := c.email("cli")
	stdout, stderr, code := c.cli(confPassword+"\nsecond line\n", "user", "add", "--email", email, "--name", "Cli")
	require.Equal(t, 0, code, stderr)
	require.NotContains(t, stdout+stderr, confPassword)
	a := c.login(email, confPassword)
	c.requireError(c.do("POST", "/auth/login", map[string]string{"email": email, "password": "second line"}), http.StatusUnauthorized, "invalid_credentials")

	// user grant: new sessions carry the scopes.
	_, stderr, code = c.cli("", "user", "grant", "--email", email, "--scope", "pub:user:*", "sub:feed:*")
	require.Equal(t, 0, code, stderr)
	b := c.login(email, confPassword)
	scopes := strings.Fields(str(c.verifyJWT(c.token(b))["scope"]))
	require.Contains(t, scopes, "pub:user:*")
	require.Contains(t, scopes, "sub:feed:*")

	// session create: the token alone on stdout; exactly the given scopes.
	stdout, stderr, code = c.cli("", "session", "create", "--email", email, "--service", "mailer", "--scope", "pub:user:*")
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `^[A-Za-z0-9_-]{22}\.shs_[A-Za-z0-9_-]{43}\n$`, stdout)
	svc := strings.TrimSpace(stdout)
	r := c.do("POST", "/session/token", nil, withSessionAuth(svc))
	require.Equal(t, http.StatusOK, r.code, "%s", r)
	m := c.obj(r)
	requireKeys(t, m, "token", "token_type", "expires_in")
	claims := c.verifyJWT(str(m["token"]))
	require.Equal(t, "pub:user:*", claims["scope"], "exactly the given scopes")
	require.Equal(t, "mailer", claims["svc"])
	svcJWT := str(m["token"])

	// The worker pushes to a user: from = service:<name>.
	target := c.user("pushed")
	wsT, _ := c.ws(c.token(target))
	r = c.do("POST", "/api/publish", map[string]any{"channel": "user:" + target.userID, "data": "ding"}, withBearer(svcJWT))
	require.Equal(t, http.StatusAccepted, r.code, "%s", r)
	msg := c.await(wsT, "message", func(m map[string]any) bool { return m["type"] == "message" })
	require.Equal(t, map[string]any{"type": "message", "channel": "user:" + target.userID, "data": "ding", "from": "service:mailer"}, msg)

	// The service socket: from the service token's JWT.
	wsS, w := c.ws(svcJWT)
	sid := str(w["session_id"])
	require.True(t, strings.HasPrefix(svc, sid+"."))

	// session revoke ID: the service session dies, its socket closes 4001.
	stdout, stderr, code = c.cli("", "session", "revoke", sid)
	require.Equal(t, 0, code, stderr)
	require.NotEmpty(t, stdout)
	code2, _ := c.closed(wsS)
	require.EqualValues(t, 4001, code2)
	c.requireError(c.do("POST", "/session/token", nil, withSessionAuth(svc)), http.StatusUnauthorized, "unauthenticated")

	// user logout-all: every session, sockets 4002.
	wsA := c.srv().socket(a.cookie, a.csrf)
	_, stderr, code = c.cli("", "user", "logout-all", "--email", strings.ToUpper(email))
	require.Equal(t, 0, code, stderr)
	code2, reason := c.closed(wsA)
	require.EqualValues(t, 4002, code2)
	require.Equal(t, "logged out everywhere", reason)
	for _, x := range []*confAccount{a, b} {
		c.requireError(c.do("GET", "/session", nil, withCookie(x.cookie)), http.StatusUnauthorized, "unauthenticated")
	}

	// keys generate: an Ed25519 JWK set with the private part.
	stdout, stderr, code = c.cli("", "keys", "generate")
	require.Equal(t, 0, code, stderr)
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &set))
	require.NotEmpty(t, set.Keys)
	k := set.Keys[0]
	require.Equal(t, "OKP", k["kty"])
	require.Equal(t, "Ed25519", k["crv"])
	require.Equal(t, "EdDSA", k["alg"])
	require.Equal(t, "sig", k["use"])
	require.NotEmpty(t, k["kid"])
	require.Regexp(t, regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`), k["d"])
}

// TestConformanceRefreshNoGrace: with SESSIONHUB_REFRESH_GRACE=0 any reuse
// of a rotated refresh token is theft: the device session is revoked, its
// socket closed, and a refresh_reuse audit event written.
//
// The same server checks other settings of the configuration table: the
// absolute lifetime caps Max-Age and expires_at, SameSite=Lax and Partitioned, and
// an explicit SESSIONHUB_ALLOWED_ORIGINS.
func TestConformanceRefreshNoGrace(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"memory", "redis+postgres"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			env := confEnv(t, mode)
			env["SESSIONHUB_REFRESH_GRACE"] = "0s"
			env["SESSIONHUB_SESSION_MAX_AGE"] = "1h" // under the 12 h idle TTL: the absolute lifetime caps

			env["SESSIONHUB_COOKIE_SAMESITE"] = "lax"
			env["SESSIONHUB_COOKIE_PARTITIONED"] = "true"
			env["SESSIONHUB_ALLOWED_ORIGINS"] = "https://app.example.com"
			h := &confHarness{mode: mode, env: env, srv: startServer(t, env), sameSite: "lax"}
			c := h.client(t)

			r := c.do("POST", "/auth/signup", map[string]string{"email": c.email("alt"), "password": confPassword})
			require.Equal(t, http.StatusCreated, r.code, "%s", r)
			raw, ck := setCookie(r)
			require.NotNil(t, ck, raw)
			require.Regexp(t, `(?i);\s*SameSite=Lax(;|$)`, raw)
			require.Regexp(t, `(?i);\s*Partitioned(;|$)`, raw)
			require.Regexp(t, `(?i);\s*Secure(;|$)`, raw)
			require.Equal(t, 3600, ck.MaxAge, "Max-Age = min(idle, absolute): %s", raw)
			alt := c.account(r, "", confPassword)
			exp := requireTime(t, alt.body["session"].(map[string]any)["expires_at"], "expires_at")
			require.WithinDuration(t, time.Now().Add(time.Hour), exp, 2*time.Minute, "expires_at is min(idle, absolute)")
			// The configured origin is allowed for CSRF-checked posts and cookie sockets.
			require.Equal(t, http.StatusOK, c.do("POST", "/session/token", nil, as(alt), withHeader("Origin", "https://app.example.com")).code)
			c.requireError(c.do("POST", "/session/token", nil, as(alt), withHeader("Origin", confEvilOrigin)), http.StatusForbidden, "origin")
			ws, dr, err := c.dial("", http.Header{"Cookie": {alt.cookie.String()}, "Origin": {"https://app.example.com"}})
			require.NoError(t, err, "%v", dr)
			require.Equal(t, "welcome", c.frame(ws)["type"])
			ws.CloseNow()

			a, m := c.mobile()
			r0 := str(m["refresh_token"])
			first := c.refresh(r0)
			require.Equal(t, http.StatusOK, first.code, "%s", first)
			r1 := str(c.obj(first)["refresh_token"])
			ws, _ = c.ws(str(c.obj(first)["access_token"]))

			c.requireError(c.refresh(r0), http.StatusUnauthorized, "invalid_token")
			code, _ := c.closed(ws)
			require.Equal(t, websocket.StatusCode(4001), code)
			c.requireError(c.refresh(r1), http.StatusUnauthorized, "invalid_token")

			if mode == "redis+postgres" {
				// The reuse is audited against the user.
				_, stderr, code := c.cli(confPassword+"\n", "user", "add", "--email", "root@conf.example", "--admin")
				require.Equal(t, 0, code, stderr)
				admin := c.login("root@conf.example", confPassword)
				r := c.do("GET", "/admin/events?type=refresh_reuse&user_id="+a.userID, nil, as(admin))
				require.Equal(t, http.StatusOK, r.code, "%s", r)
				require.Len(t, c.obj(r)["events"], 1)

				// /admin/stats counts this node's live sockets now, not as of
				// its last presence beat (nothing else runs on this server).
				stats := func() float64 {
					t.Helper()
					r := c.do("GET", "/admin/stats", nil, as(admin))
					require.Equal(t, http.StatusOK, r.code, "%s", r)
					n, _ := c.obj(r)["connections"].(float64)
					return n
				}
				require.Zero(t, stats(), "no socket is open")
				var socks []*websocket.Conn
				jwt := c.token(admin)
				for range 3 {
					s, _ := c.ws(jwt)
					socks = append(socks, s)
				}
				require.EqualValues(t, 3, stats(), "three live sockets on the one node")
				for _, s := range socks {
					s.Close(websocket.StatusNormalClosure, "")
				}
			}
		})
	}
}
