package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/auth"
	"github.com/sessionhub/sessionhub/internal/testenv"
	"github.com/sessionhub/sessionhub/sessions"
)

// apiMetrics are the names API.md's Metrics section promises, plus a
// series of each of the Go and process collectors.
var apiMetrics = []string{
	"sessionhub_hub_connections",
	"sessionhub_hub_connects_total",
	"sessionhub_hub_disconnects_total",
	"sessionhub_hub_revoke_close_seconds",
	"sessionhub_hub_messages_total",
	"sessionhub_sessions_created_total",
	"sessionhub_sessions_revoked_total",
	"sessionhub_auth_logins_total",
	"sessionhub_tokens_issued_total",
	"sessionhub_http_request_duration_seconds",
	"sessionhub_redis_pubsub_reconnects_total",
	"go_goroutines",
	"process_cpu_seconds_total",
}

// opsPassword is the password of s.signup (socket_test.go).
const opsPassword = "correct horse battery"

// accessLine is what one request must leave in the access log.
type accessLine struct {
	route     string
	status    int
	sessionID string // public id of the presented session token, or ""
}

// journey is one scripted user's run against a server: every secret the
// server handed out (for the log test to look for), the access lines its
// requests must produce, and the ids that must never become labels.
type journey struct {
	s        *server
	email    string
	userID   string
	ids      []string          // session ids: signup, login, worker
	secrets  map[string]string // what → value, never to be logged
	expected []accessLine
	randPath string
}

// opsEnv is a Redis + Postgres environment on a fresh schema and prefix.
func opsEnv(t *testing.T) map[string]string {
	_, prefix := testenv.Redis(t)
	return map[string]string{
		"REDIS_URL": testenv.RedisURL(), "DATABASE_URL": testenv.SchemaURL(t), "SESSIONHUB_REDIS_PREFIX": prefix,
		"SESSIONHUB_DRAIN": "1s",
	}
}

// newWorker creates, through the command line as an operator would, a user
// holding pub:user:* and a service session for it; it returns the session
// token "<id>.<secret>".
func newWorker(t *testing.T, env map[string]string) string {
	t.Helper()
	_, stderr, code := cli(t, env, "worker password 123\n", "user", "add", "--email", "worker@example.com")
	require.Equal(t, 0, code, stderr)
	_, stderr, code = cli(t, env, "", "user", "grant", "--email", "worker@example.com", "--scope", "pub:user:*")
	require.Equal(t, 0, code, stderr)
	out, stderr, code := cli(t, env, "", "session", "create", "--email", "worker@example.com", "--service", "pusher", "--scope", "pub:user:*")
	require.Equal(t, 0, code, stderr)
	return strings.TrimSpace(out)
}

// call sends one request and decodes a JSON answer into out (when not nil).
func (j *journey) call(method, path, body string, hdr http.Header, out any) *http.Response {
	j.s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, j.s.url+path, rd)
	require.NoError(j.s.t, err)
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := j.s.client.Do(req)
	require.NoError(j.s.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(j.s.t, err)
	if out != nil && resp.StatusCode < 300 {
		require.NoError(j.s.t, json.Unmarshal(raw, out), string(raw))
	}
	return resp
}

func (j *journey) expect(route string, status int, sessionID string) {
	j.expected = append(j.expected, accessLine{route, status, sessionID})
}

func publicID(token string) string {
	id, _, _ := strings.Cut(token, ".")
	return id
}

func secretOf(token string) string {
	_, secret, _ := strings.Cut(token, ".")
	return secret
}

// runJourney plays signup → login → GET /session → token → socket →
// worker publish → logout (the socket closes with 4001) → a random path,
// and, with mobile, a mobile login and a refresh. workerToken is a service
// session of newWorker.
func runJourney(t *testing.T, s *server, workerToken string, mobile bool) *journey {
	t.Helper()
	j := &journey{s: s, email: "ops@example.com", secrets: map[string]string{
		"password":              opsPassword,
		"worker session token":  workerToken,
		"worker session secret": secretOf(workerToken),
	}}
	j.ids = append(j.ids, publicID(workerToken))

	cookie1, csrf1 := s.signup(j.email)
	j.expect("/auth/signup", http.StatusCreated, "")
	j.secrets["signup cookie"] = cookie1.Value
	j.secrets["signup session secret"] = secretOf(cookie1.Value)
	j.secrets["signup csrf token"] = csrf1
	j.ids = append(j.ids, publicID(cookie1.Value))

	var login struct {
		User    struct{ ID string }
		Session struct{ ID string }
		CSRF    string `json:"csrf_token"`
	}
	resp := j.call(http.MethodPost, "/auth/login", `{"email":"`+j.email+`","password":"`+opsPassword+`"}`, nil, &login)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	j.expect("/auth/login", http.StatusOK, "")
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == auth.CookieName {
			cookie = c
		}
	}
	require.NotNil(t, cookie)
	j.userID = login.User.ID
	require.Equal(t, login.Session.ID, publicID(cookie.Value))
	j.ids = append(j.ids, login.Session.ID)
	j.secrets["login cookie"] = cookie.Value
	j.secrets["login session secret"] = secretOf(cookie.Value)
	j.secrets["login csrf token"] = login.CSRF
	withCookie := http.Header{"Cookie": {cookie.String()}, "X-Csrf-Token": {login.CSRF}}

	resp = j.call(http.MethodGet, "/session", "", withCookie, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	j.expect("/session", http.StatusOK, login.Session.ID)

	var tok struct{ Token string }
	resp = j.call(http.MethodPost, "/session/token", "", withCookie, &tok)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	j.expect("/session/token", http.StatusOK, login.Session.ID)
	j.secrets["socket jwt"] = tok.Token
	j.secrets["socket jwt signature"] = tok.Token[strings.LastIndex(tok.Token, ".")+1:]

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ws, hresp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/ws", &websocket.DialOptions{
		HTTPClient: s.client,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + tok.Token}},
	})
	require.NoError(t, err)
	defer ws.CloseNow()
	if hresp.Body != nil {
		hresp.Body.Close()
	}
	_, msg, err := ws.Read(ctx)
	require.NoError(t, err)
	require.Contains(t, string(msg), `"welcome"`)

	var wtok struct{ Token string }
	resp = j.call(http.MethodPost, "/session/token", "", http.Header{"Authorization": {"Session " + workerToken}}, &wtok)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	j.expect("/session/token", http.StatusOK, publicID(workerToken))
	j.secrets["worker jwt"] = wtok.Token

	resp = j.call(http.MethodPost, "/api/publish", `{"channel":"user:`+j.userID+`","data":{"n":1}}`,
		http.Header{"Authorization": {"Bearer " + wtok.Token}}, nil)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	j.expect("/api/publish", http.StatusAccepted, publicID(workerToken)) // the verified JWT's session
	_, msg, err = ws.Read(ctx)
	require.NoError(t, err)
	require.Contains(t, string(msg), `"type":"message"`)
	require.Contains(t, string(msg), `"from":"service:pusher"`)

	resp = s.post("/auth/logout", cookie, login.CSRF)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	j.expect("/auth/logout", http.StatusNoContent, login.Session.ID)
	require.Equal(t, websocket.StatusCode(4001), closeCode(t, ws))
	// The handshake's line: its handler returns once the socket is handed
	// to the hub (before the close, but counted only here for clarity).
	j.expect("/ws", http.StatusSwitchingProtocols, login.Session.ID)

	j.randPath = "zz" + strings.ToLower(sessions.RandomString(10))
	resp = j.call(http.MethodGet, "/"+j.randPath+"/"+j.randPath, "", nil, nil)
	j.expect("/*", resp.StatusCode, "")

	if mobile {
		var ml struct {
			Session      struct{ ID string }
			RefreshToken string `json:"refresh_token"`
			AccessToken  string `json:"access_token"`
		}
		resp = j.call(http.MethodPost, "/auth/login", `{"email":"`+j.email+`","password":"`+opsPassword+`","device":"Pixel 8"}`,
			http.Header{"X-Client": {"mobile"}}, &ml)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.NotEmpty(t, ml.RefreshToken)
		j.expect("/auth/login", http.StatusOK, "")
		j.ids = append(j.ids, ml.Session.ID)
		j.secrets["refresh token"] = ml.RefreshToken
		j.secrets["refresh secret"] = secretOf(ml.RefreshToken)
		j.secrets["mobile access token"] = ml.AccessToken

		var rf struct {
			RefreshToken string `json:"refresh_token"`
			AccessToken  string `json:"access_token"`
		}
		resp = j.call(http.MethodPost, "/auth/refresh", `{"refresh_token":"`+ml.RefreshToken+`"}`, nil, &rf)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		j.expect("/auth/refresh", http.StatusOK, "")
		j.secrets["rotated refresh token"] = rf.RefreshToken
		j.secrets["refreshed access token"] = rf.AccessToken
	}
	for what, v := range j.secrets {
		require.NotEmpty(t, v, what)
	}
	return j
}

// scrape reads the metrics listener's exposition.
func scrape(t *testing.T, s *server) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := s.client.Get(s.metrics + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// value sums the samples of name whose labels include want. name may be a
// histogram's name_count or name_sum. A family or series that does not
// exist yet counts 0.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	base, field := name, ""
	if _, ok := fams[name]; !ok {
		for _, suffix := range []string{"_count", "_sum"} {
			if b, ok := strings.CutSuffix(name, suffix); ok {
				base, field = b, suffix
			}
		}
	}
	mf := fams[base]
	if mf == nil {
		return 0
	}
	total := 0.0
next:
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		case m.Histogram != nil && field == "_count":
			total += float64(m.GetHistogram().GetSampleCount())
		case m.Histogram != nil && field == "_sum":
			total += m.GetHistogram().GetSampleSum()
		}
	}
	return total
}

type labels = map[string]string

// TestMetricsMoveByJourney runs the real server on Redis + Postgres and
// checks that one login, one token, one socket, one publish and one
// revocation move each series of API.md by exactly their amount, that the
// label values stay bounded, and that the exposition lints clean.
func TestMetricsMoveByJourney(t *testing.T) {
	t.Parallel()
	env := opsEnv(t)
	worker := newWorker(t, env)
	s := startServer(t, env)

	before := scrape(t, s)
	j := runJourney(t, s, worker, false)

	// Some series move just after the client saw the effect (the close
	// frame is counted once written, a delivery once handed to every
	// socket): scrape until the last of them has moved.
	var after map[string]*dto.MetricFamily
	deadline := time.Now().Add(10 * time.Second)
	for {
		after = scrape(t, s)
		if value(after, "sessionhub_hub_disconnects_total", labels{"reason": "revoked"}) > value(before, "sessionhub_hub_disconnects_total", labels{"reason": "revoked"}) &&
			value(after, "sessionhub_hub_revoke_close_seconds_count", nil) > value(before, "sessionhub_hub_revoke_close_seconds_count", nil) &&
			value(after, "sessionhub_hub_messages_total", labels{"direction": "out"}) > value(before, "sessionhub_hub_messages_total", labels{"direction": "out"}) &&
			value(after, "sessionhub_http_request_duration_seconds_count", labels{"route": "/ws"}) > 0 ||
			time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	cases := []struct {
		name   string
		labels labels
		delta  float64
	}{
		{"sessionhub_auth_logins_total", labels{"method": "password", "result": "success"}, 1},
		{"sessionhub_auth_logins_total", labels{"result": "failure"}, 0},
		{"sessionhub_sessions_created_total", labels{"method": "signup"}, 1},
		{"sessionhub_sessions_created_total", labels{"method": "password"}, 1},
		{"sessionhub_sessions_created_total", nil, 2}, // the worker's came from the CLI, before
		{"sessionhub_tokens_issued_total", labels{"kind": "access"}, 2},
		{"sessionhub_tokens_issued_total", labels{"kind": "refresh"}, 0},
		{"sessionhub_hub_connects_total", labels{"result": "ok"}, 1},
		{"sessionhub_hub_connects_total", nil, 1},
		{"sessionhub_hub_disconnects_total", labels{"reason": "revoked"}, 1},
		{"sessionhub_hub_disconnects_total", nil, 1},
		{"sessionhub_hub_connections", nil, 0},
		{"sessionhub_hub_revoke_close_seconds_count", nil, 1},
		{"sessionhub_hub_messages_total", labels{"direction": "in"}, 1},
		{"sessionhub_hub_messages_total", labels{"direction": "out"}, 1},
		{"sessionhub_sessions_revoked_total", labels{"reason": "logout"}, 1},
		{"sessionhub_sessions_revoked_total", nil, 1},
		{"sessionhub_http_request_duration_seconds_count", labels{"route": "/session", "method": "GET", "code": "200"}, 1},
		{"sessionhub_http_request_duration_seconds_count", labels{"route": "/auth/signup", "method": "POST", "code": "201"}, 1},
		{"sessionhub_http_request_duration_seconds_count", labels{"route": "/auth/login", "method": "POST", "code": "200"}, 1},
		{"sessionhub_http_request_duration_seconds_count", labels{"route": "/session/token", "method": "POST", "code": "200"}, 2},
		{"sessionhub_http_request_duration_seconds_count", labels{"route": "/api/publish", "method": "POST", "code": "202"}, 1},
		{"sessionhub_http_request_duration_seconds_count", labels{"route": "/auth/logout", "method": "POST", "code": "204"}, 1},
		{"sessionhub_http_request_duration_seconds_count", labels{"route": "/ws", "method": "GET", "code": "101"}, 1},
		{"sessionhub_http_request_duration_seconds_count", labels{"route": "/*", "method": "GET"}, 1},
		{"sessionhub_redis_pubsub_reconnects_total", nil, 0},
		// Alive: the worker's (before), the signup's; the login's is gone.
		{"sessionhub_sessions_active", nil, 1},
	}
	for _, c := range cases {
		require.Equal(t, c.delta, value(after, c.name, c.labels)-value(before, c.name, c.labels), "%s%v", c.name, c.labels)
	}
	require.Equal(t, 2.0, value(after, "sessionhub_sessions_active", nil))
	require.Equal(t, 1.0, value(after, "sessionhub_ready", nil))
	require.Equal(t, 1.0, value(after, "sessionhub_store_up", labels{"store": "redis"}))
	require.Equal(t, 1.0, value(after, "sessionhub_store_up", labels{"store": "postgres"}))
	for _, name := range []string{"sessionhub_sessions_restored_total", "sessionhub_sessions_redis_failures_total", "sessionhub_sessions_postgres_reads_total"} {
		require.Contains(t, after, name)
	}
	require.Zero(t, value(after, "sessionhub_sessions_redis_failures_total", nil), "Redis never failed")

	for _, name := range apiMetrics {
		require.Contains(t, after, name, "API.md promises %s", name)
	}

	// Bounded labels: routes are patterns, and no id, email or raw path
	// is ever a label value.
	forbidden := append([]string{j.randPath, j.email, j.userID}, j.ids...)
	for name, mf := range after {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				for _, f := range forbidden {
					require.NotContains(t, lp.GetValue(), f, "%s{%s}", name, lp.GetName())
				}
				if lp.GetName() == "route" {
					require.True(t, lp.GetValue() == "unmatched" || strings.HasPrefix(lp.GetValue(), "/"), lp.GetValue())
				}
			}
		}
	}
	for _, m := range after["sessionhub_http_request_duration_seconds"].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "method" {
				require.Contains(t, []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"}, lp.GetValue())
			}
		}
	}

	// promlint, as testutil.GatherAndLint runs it, over everything served.
	list := make([]*dto.MetricFamily, 0, len(after))
	for _, mf := range after {
		list = append(list, mf)
	}
	problems, err := promlint.NewWithMetricFamilies(list).Lint()
	require.NoError(t, err)
	require.Empty(t, problems)

	// The metrics are not on the public port.
	code, _ := s.get("/metrics")
	require.NotEqual(t, http.StatusOK, code)
	require.NoError(t, s.shutdown())
}

// TestMetricsLint wires a server on a pedantic registry (which checks
// every collector's Describe against its Collect, as testutil.CollectAndLint
// does for one), gives the auth and HTTP vectors children with a signup,
// a token and a logout, and lints every family. The scraped exposition of
// a full journey is linted by TestMetricsMoveByJourney.
func TestMetricsLint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg, err := parseServeConfig(nil, envOf(map[string]string{"SESSIONHUB_LOG_LEVEL": "error"}), io.Discard)
	require.NoError(t, err)
	log := newLogger(cfg, io.Discard)
	b, err := openBackends(ctx, cfg, log)
	require.NoError(t, err)
	defer b.close()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a, err := wire(cfg, b, log, reg)
	require.NoError(t, err)

	ts := httptest.NewServer(a.handler)
	defer ts.Close()
	s := &server{t: t, url: ts.URL, client: ts.Client()}
	cookie, csrf := s.signup("lint@example.com")
	for _, path := range []string{"/session/token", "/auth/logout"} {
		resp := s.post(path, cookie, csrf)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Less(t, resp.StatusCode, 300, path)
	}

	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
	n, err := testutil.GatherAndCount(reg, "sessionhub_sessions_created_total", "sessionhub_tokens_issued_total",
		"sessionhub_sessions_revoked_total", "sessionhub_http_request_duration_seconds", "sessionhub_hub_connects_total",
		"sessionhub_ready", "sessionhub_store_up", "sessionhub_sessions_active")
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, 8, "every linted family has children")

	// The store gauges, one collector on its own: draining or both stores
	// down is not ready; one store down is degraded, still ready.
	var draining atomic.Bool
	for _, tc := range []struct {
		hot, durable error
		draining     bool
		want         string
	}{
		{nil, nil, false, "sessionhub_ready 1\nsessionhub_store_up{store=\"postgres\"} 1\nsessionhub_store_up{store=\"redis\"} 1\n"},
		{errDown, nil, false, "sessionhub_ready 1\nsessionhub_store_up{store=\"postgres\"} 1\nsessionhub_store_up{store=\"redis\"} 0\n"},
		{nil, errDown, false, "sessionhub_ready 1\nsessionhub_store_up{store=\"postgres\"} 0\nsessionhub_store_up{store=\"redis\"} 1\n"},
		{errDown, errDown, false, "sessionhub_ready 0\nsessionhub_store_up{store=\"postgres\"} 0\nsessionhub_store_up{store=\"redis\"} 0\n"},
		{nil, nil, true, "sessionhub_ready 0\nsessionhub_store_up{store=\"postgres\"} 1\nsessionhub_store_up{store=\"redis\"} 1\n"},
	} {
		draining.Store(tc.draining)
		sreg := prometheus.NewPedanticRegistry()
		require.NoError(t, registerStoreCollector(sreg, fakeProbe{fakeHealth{tc.hot, tc.durable}, 7}, &draining))
		out, err := testutil.GatherAndFormat(sreg, expfmt.TypeTextPlain, "sessionhub_ready", "sessionhub_store_up")
		require.NoError(t, err)
		require.Equal(t, tc.want, stripComments(string(out)))
		active, err := testutil.GatherAndCount(sreg, "sessionhub_sessions_active")
		require.NoError(t, err)
		require.Equal(t, map[bool]int{true: 0, false: 1}[tc.hot != nil], active, "no active count while Redis is down")
		problems, err := testutil.GatherAndLint(sreg)
		require.NoError(t, err)
		require.Empty(t, problems)
	}
}

var errDown = errors.New("down")

// fakeProbe is a store whose health the test sets; CountActive answers n.
type fakeProbe struct {
	fakeHealth
	n int64
}

func (f fakeProbe) CountActive(context.Context) (int64, error) { return f.n, nil }

func (f fakeProbe) Stats() sessions.Stats { return sessions.Stats{Restored: 1} }

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if !strings.HasPrefix(l, "#") {
			b.WriteString(l)
		}
	}
	return b.String()
}
