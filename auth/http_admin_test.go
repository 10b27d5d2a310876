package auth

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/sessions"
)

// hCluster is a hand-written Cluster: it records the request ids it was
// asked to acknowledge and answers fixed counts.
type hCluster struct {
	mu        sync.Mutex
	requested []string
	waited    []time.Duration
	closed    int
	nodes     []NodeInfo
}

func (c *hCluster) Acknowledge(_ context.Context, requestID string) (func(time.Duration) (int, int), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requested = append(c.requested, requestID)
	return func(d time.Duration) (int, int) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.waited = append(c.waited, d)
		return c.closed, len(c.nodes)
	}, nil
}

func (c *hCluster) Nodes(context.Context) ([]NodeInfo, error) { return c.nodes, nil }

func TestAdminAccess(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	plain := b.signup(t, hEmail("plain"))
	r := plain.do(t, "GET", "/admin/users", nil)
	require.Equal(t, http.StatusForbidden, r.status)
	require.Equal(t, "forbidden", r.errCode(t))
	require.Equal(t, http.StatusUnauthorized, b.do(t, "GET", "/admin/users", nil).status)
	admin := b.admin(t)
	require.Equal(t, http.StatusOK, admin.do(t, "GET", "/admin/users", nil).status)
	// A JWT of an admin session is not a session.
	jwt := admin.do(t, "POST", "/session/token", nil).json(t)["token"].(string)
	require.Equal(t, http.StatusUnauthorized, b.do(t, "GET", "/admin/users", nil, "Authorization", "Bearer "+jwt).status)
	// Admin mutations need CSRF with a cookie ...
	r = b.do(t, "POST", "/admin/users", map[string]any{"email": hEmail("x")}, "Cookie", CookieName+"="+admin.token)
	require.Equal(t, "csrf", r.errCode(t))
	// ... but not with a service session holding admin.
	svc, err := b.srv.CreateServiceSession(context.Background(), admin.email, "bff", []string{"admin"})
	require.NoError(t, err)
	r = b.do(t, "POST", "/admin/users", map[string]any{"email": hEmail("bffuser"), "password": hPassword}, "Authorization", "Session "+svc)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	svcPlain, err := b.srv.CreateServiceSession(context.Background(), admin.email, "bff", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusForbidden, b.do(t, "GET", "/admin/stats", nil, "Authorization", "Session "+svcPlain).status)
}

func TestAdminCreateUser(t *testing.T) {
	t.Parallel()
	b := hSetup(t, func(c *Config, _ *Deps) { c.DefaultScopes = []string{"sub:room:*"} })
	admin := b.admin(t)
	email := hEmail("Created")
	r := admin.do(t, "POST", "/admin/users", map[string]any{"email": email, "name": "C", "password": hPassword, "scopes": []string{"pub:room:*"}})
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	m := r.json(t)
	require.ElementsMatch(t, []string{"user"}, keysOf(m))
	require.ElementsMatch(t, []string{"id", "email", "name", "created_at"}, keysOf(m["user"].(map[string]any)))
	u, err := b.srv.users.UserByEmail(context.Background(), email)
	require.NoError(t, err)
	require.Equal(t, []string{"pub:room:*", "sub:room:*"}, u.Scopes)
	b.login(t, email)

	for _, tc := range []struct {
		body map[string]any
		code string
	}{
		{map[string]any{"email": email}, "email_taken"},
		{map[string]any{"email": "nope"}, "invalid_email"},
		{map[string]any{"email": hEmail("w"), "password": "short"}, "weak_password"},
		{map[string]any{"email": hEmail("s"), "scopes": []string{"sub:a*b"}}, "invalid_scope"},
	} {
		require.Equal(t, tc.code, admin.do(t, "POST", "/admin/users", tc.body).errCode(t))
	}
	// Without a password the account exists but cannot log in with one.
	nopw := hEmail("nopw")
	require.Equal(t, http.StatusCreated, admin.do(t, "POST", "/admin/users", map[string]any{"email": nopw}).status)
	require.Equal(t, http.StatusUnauthorized, b.do(t, "POST", "/auth/login", map[string]any{"email": nopw, "password": ""}).status)
	require.NotEmpty(t, b.events(t, EventAdminAction, admin.id))
}

// TestAdminUsersSearch: q is literal (% and _ are not wildcards), case
// insensitive over email and name; cursor pages end with next_cursor null.
func TestAdminUsersSearch(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	admin := b.admin(t)
	ctx := context.Background()
	for _, e := range []string{"a_b@x.io", "axb@x.io", "100%@x.io", "1000@x.io", "Case@Y.io"} {
		_, err := b.srv.CreateUser(ctx, e, "", "", nil)
		require.NoError(t, err)
	}
	_, err := b.srv.CreateUser(ctx, "named@z.io", "Grace HOPPER", "", nil)
	require.NoError(t, err)
	search := func(q string) []string {
		r := admin.do(t, "GET", "/admin/users?q="+url.QueryEscape(q), nil)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		var out []string
		for _, u := range r.json(t)["users"].([]any) {
			out = append(out, u.(map[string]any)["email"].(string))
		}
		return out
	}
	require.Equal(t, []string{"a_b@x.io"}, search("_"))
	require.Equal(t, []string{"a_b@x.io"}, search("a_b"))
	require.Equal(t, []string{"100%@x.io"}, search("%"))
	require.Equal(t, []string{"Case@Y.io"}, search("case@y"))
	require.Equal(t, []string{"named@z.io"}, search("hopper"))
	require.Empty(t, search("nobody-at-all"))

	var all []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		q := "/admin/users?limit=2"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		r := admin.do(t, "GET", q, nil)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		m := r.json(t)
		users := m["users"].([]any)
		require.LessOrEqual(t, len(users), 2)
		for _, u := range users {
			all = append(all, u.(map[string]any)["email"].(string))
		}
		if m["next_cursor"] == nil {
			break
		}
		cursor = m["next_cursor"].(string)
	}
	require.Len(t, all, 7) // six + the admin
	seen := map[string]bool{}
	for _, e := range all {
		require.False(t, seen[e], "duplicate %s", e)
		seen[e] = true
	}
	r := admin.do(t, "GET", "/admin/users?limit=0", nil)
	require.Equal(t, http.StatusBadRequest, r.status)
	r = admin.do(t, "GET", "/admin/users?cursor=***", nil)
	require.Equal(t, http.StatusBadRequest, r.status)
}

func TestAdminRevocations(t *testing.T) {
	t.Parallel()
	cl := &hCluster{closed: 3, nodes: []NodeInfo{{ID: "n1", Connections: 4, StartedAt: time.Now()}, {ID: "n2", Connections: 1, StartedAt: time.Now()}}}
	b := hSetup(t, func(_ *Config, d *Deps) { d.Cluster = cl })
	admin := b.admin(t)
	victim := b.signup(t, hEmail("victim"))
	phone := b.login(t, victim.email)

	r := admin.do(t, "GET", "/admin/users/"+victim.id+"/sessions", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Len(t, r.json(t)["sessions"].([]any), 2)
	require.Equal(t, http.StatusNotFound, admin.do(t, "GET", "/admin/users/"+newUserID()+"/sessions", nil).status)
	require.Equal(t, http.StatusNotFound, admin.do(t, "GET", "/admin/users/not-a-uuid/sessions", nil).status)

	r = admin.do(t, "DELETE", "/admin/sessions/"+phone.sessID, nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.Equal(t, map[string]any{"sockets_closed": 3.0, "nodes_acked": 2.0}, r.json(t))
	require.Equal(t, http.StatusUnauthorized, phone.do(t, "GET", "/session", nil).status)
	require.Equal(t, http.StatusNotFound, admin.do(t, "DELETE", "/admin/sessions/"+phone.sessID, nil).status)

	r = admin.do(t, "POST", "/admin/users/"+victim.id+"/logout-all", nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.Equal(t, map[string]any{"sessions_revoked": 1.0, "sockets_closed": 3.0, "nodes_acked": 2.0}, r.json(t))
	require.Equal(t, http.StatusUnauthorized, victim.do(t, "GET", "/session", nil).status)
	require.Equal(t, http.StatusOK, admin.do(t, "GET", "/session", nil).status)

	cl.mu.Lock()
	require.Len(t, cl.requested, 2)
	require.NotEqual(t, cl.requested[0], cl.requested[1])
	require.Equal(t, []time.Duration{2 * time.Second, 2 * time.Second}, cl.waited)
	cl.mu.Unlock()
	for _, e := range b.events(t, EventSessionRevoked, victim.id) {
		require.Equal(t, "admin", e.Detail["reason"])
	}

	r = admin.do(t, "GET", "/admin/stats", nil)
	require.Equal(t, http.StatusOK, r.status)
	m := r.json(t)
	require.ElementsMatch(t, []string{"nodes", "connections", "sessions_active"}, keysOf(m))
	require.EqualValues(t, 5, m["connections"])
	require.Len(t, m["nodes"].([]any), 2)
	require.ElementsMatch(t, []string{"id", "connections", "started_at"}, keysOf(m["nodes"].([]any)[0].(map[string]any)))
	require.GreaterOrEqual(t, m["sessions_active"], 1.0)
}

// TestAdminNoCluster: without a hub, counts are zero and revocation works.
func TestAdminNoCluster(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	admin := b.admin(t)
	victim := b.signup(t, hEmail("v"))
	r := admin.do(t, "POST", "/admin/users/"+victim.id+"/logout-all", nil)
	require.Equal(t, map[string]any{"sessions_revoked": 1.0, "sockets_closed": 0.0, "nodes_acked": 0.0}, r.json(t))
	r = admin.do(t, "GET", "/admin/stats", nil)
	require.Equal(t, []any{}, r.json(t)["nodes"])
	n, err := b.srv.LogoutAll(context.Background(), admin.email)
	require.NoError(t, err)
	require.Equal(t, 2, n) // signup + login sessions
	_, err = b.srv.LogoutAll(context.Background(), "nobody@x.io")
	require.ErrorIs(t, err, ErrUserNotFound)
	require.ErrorIs(t, b.srv.RevokeSession(context.Background(), sessions.NewToken().ID), sessions.ErrNotFound)
}
