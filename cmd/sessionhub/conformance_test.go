package main

// API conformance suite: every check here is a sentence of
// /work/shared/API.md asserted against the real `sessionhub serve` (run in
// process through startServer), once in memory mode and once on Redis +
// Postgres. One server per mode; every check is a parallel subtest with its
// own users and its own client IP (X-Forwarded-For from a trusted proxy), so
// the per-IP login budget of one check never spills into another.
// Deviations found are listed in /work/coord/CONFORMANCE.md.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/auth"
	"github.com/sessionhub/sessionhub/internal/testenv"
)

// Fixed values of the conformance servers.
const (
	confPassword = "correct horse battery staple"
	// confOrigin is the default SESSIONHUB_PUBLIC_URL's origin, hence the
	// one allowed origin.
	confOrigin     = "http://localhost:8080"
	confEvilOrigin = "https://evil.example"
	// confScopes are SESSIONHUB_DEFAULT_SCOPES, so that sockets have room
	// grants in both modes (memory mode has no CLI to grant them).
	confScopes = "sub:room:* pub:room:*"
)

// confCheck is one conformance check; rp marks those that need Redis +
// Postgres (the CLI, admin accounts, reports).
type confCheck struct {
	name string
	rp   bool
	fn   func(t *testing.T, c *confClient)
}

// confChecks lists every check of the suite, across the conformance_*_test.go files.
func confChecks() []confCheck {
	var all []confCheck
	all = append(all, confAuthChecks()...)
	all = append(all, confSessionChecks()...)
	all = append(all, confHubChecks()...)
	all = append(all, confAdminChecks()...)
	// The longest checks start first, so they do not make the tail.
	slow := []string{"ratelimit-ip", "cli", "ws-channel-cap", "ratelimit-account", "password", "admin-guard", "signup-errors"}
	rank := func(c confCheck) int {
		if i := slices.Index(slow, c.name); i >= 0 {
			return i
		}
		return len(slow)
	}
	slices.SortStableFunc(all, func(a, b confCheck) int { return rank(a) - rank(b) })
	return all
}

// confHarness is one running server of one mode.
type confHarness struct {
	mode string
	srv  *server
	env  map[string]string // the server's environment (the CLI reuses it)
	seq  atomic.Int64
	// sameSite is the expected cookie SameSite ("" → none, API.md's default).
	sameSite string
}

func (h *confHarness) next() int64 { return h.seq.Add(1) }

func (h *confHarness) rp() bool { return h.mode == "redis+postgres" }

// confEnv is the environment of a conformance server of mode.
func confEnv(t *testing.T, mode string) map[string]string {
	env := map[string]string{
		"SESSIONHUB_DRAIN":           "200ms",
		"SESSIONHUB_TRUSTED_PROXIES": "127.0.0.1/32,::1/128",
		"SESSIONHUB_DEFAULT_SCOPES":  confScopes,
	}
	if mode == "redis+postgres" {
		_, prefix := testenv.Redis(t)
		env["REDIS_URL"] = testenv.RedisURL()
		env["DATABASE_URL"] = testenv.SchemaURL(t)
		env["SESSIONHUB_REDIS_PREFIX"] = prefix
	}
	return env
}

// TestConformance runs every check against one server per mode.
func TestConformance(t *testing.T) {
	t.Parallel()
	// The checks mostly wait on the network, so they run more at once than
	// -parallel (GOMAXPROCS) would allow; but each signup or login is an
	// argon2id hash, and the server sheds hashes queued past 5 s with 503
	// (GOMAXPROCS slots), so a few per CPU, shared by both modes.
	sem := make(chan struct{}, 3*runtime.GOMAXPROCS(0))
	for _, mode := range []string{"memory", "redis+postgres"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			env := confEnv(t, mode)
			h := &confHarness{mode: mode, env: env, srv: startServer(t, env)}
			// t.Run may be called from several goroutines.
			var wg sync.WaitGroup
			for _, c := range confChecks() {
				if c.rp && !h.rp() {
					continue
				}
				wg.Go(func() {
					sem <- struct{}{}
					defer func() { <-sem }()
					t.Run(c.name, func(t *testing.T) { c.fn(t, h.client(t)) })
				})
			}
			wg.Wait()
		})
	}
}

// confClient is one check's view of the server: its own client IP (sent as
// X-Forwarded-For, believed from 127.0.0.1) and HTTP client.
type confClient struct {
	t    *testing.T
	h    *confHarness
	ip   string
	http *http.Client
}

// xffTransport stamps every request with the check's client IP.
type xffTransport struct {
	ip   string
	base http.RoundTripper
}

func (x xffTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", x.ip)
	return x.base.RoundTrip(r)
}

func (h *confHarness) client(t *testing.T) *confClient {
	n := h.next()
	return h.clientAt(t, fmt.Sprintf("10.%d.%d.%d", (n>>16)&255, (n>>8)&255, n&255))
}

// clientAt is a client whose requests come from ip.
func (h *confHarness) clientAt(t *testing.T, ip string) *confClient {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &confClient{t: t, h: h, ip: ip, http: &http.Client{
		Transport: xffTransport{ip: ip, base: tr},
		Timeout:   20 * time.Second,
		// Redirects are part of the contract (Google login): never follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// fresh is another client of the same check with a new client IP.
func (c *confClient) fresh() *confClient { return c.h.client(c.t) }

// srv is the shared server seen through this check's t and client, so the
// helpers of e2e_test.go and socket_test.go fail the right test.
func (c *confClient) srv() *server {
	s := *c.h.srv
	s.t, s.client = c.t, c.http
	return &s
}

func (c *confClient) url(path string) string { return c.h.srv.url + path }

// email is a unique address for this run.
func (c *confClient) email(tag string) string {
	return fmt.Sprintf("%s-%d-%d@conf.example", tag, c.h.next(), time.Now().UnixNano()%1e6)
}

// confResp is a fully read response.
type confResp struct {
	code int
	hdr  http.Header
	body []byte
}

func (r *confResp) String() string {
	return fmt.Sprintf("%d %v %s", r.code, r.hdr, r.body)
}

// reqOpt adjusts a request.
type reqOpt func(*http.Request)

func withCookie(ck *http.Cookie) reqOpt { return func(r *http.Request) { r.AddCookie(ck) } }
func withCSRF(tok string) reqOpt        { return func(r *http.Request) { r.Header.Set("X-CSRF-Token", tok) } }
func withHeader(k, v string) reqOpt     { return func(r *http.Request) { r.Header.Set(k, v) } }
func withBearer(jwt string) reqOpt      { return withHeader("Authorization", "Bearer "+jwt) }
func withSessionAuth(tok string) reqOpt { return withHeader("Authorization", "Session "+tok) }

// as authenticates a request with an account's cookie and CSRF token.
func as(a *confAccount) reqOpt {
	return func(r *http.Request) {
		r.AddCookie(a.cookie)
		r.Header.Set("X-CSRF-Token", a.csrf)
	}
}

// do sends one request. body is nil (none), a string or []byte (raw, sent
// as application/json), or a value marshalled to JSON.
func (c *confClient) do(method, path string, body any, opts ...reqOpt) *confResp {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(c.t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.url(path), rd)
	require.NoError(c.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := c.http.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return &confResp{code: resp.StatusCode, hdr: resp.Header, body: data}
}

// obj decodes a JSON object body.
func (c *confClient) obj(r *confResp) map[string]any {
	c.t.Helper()
	var m map[string]any
	require.NoError(c.t, json.Unmarshal(r.body, &m), "body is not a JSON object: %s", r)
	return m
}

// requireKeys asserts that m has exactly keys.
func requireKeys(t *testing.T, m map[string]any, keys ...string) {
	t.Helper()
	got := make([]string, 0, len(m))
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	want := slices.Clone(keys)
	slices.Sort(want)
	require.Equal(t, want, got, "object keys of %v", m)
}

// requireError asserts API.md's error response: the status, a JSON body of
// exactly {"error": code, "message": non-empty}, application/json.
// code "" accepts any code.
func (c *confClient) requireError(r *confResp, status int, code string) {
	c.t.Helper()
	require.Equal(c.t, status, r.code, "status: %s", r)
	require.True(c.t, strings.HasPrefix(r.hdr.Get("Content-Type"), "application/json"),
		"error bodies are application/json: %s", r)
	m := c.obj(r)
	requireKeys(c.t, m, "error", "message")
	if code != "" {
		require.Equal(c.t, code, m["error"], "error code: %s", r)
	}
	msg, _ := m["message"].(string)
	require.NotEmpty(c.t, msg, "message: %s", r)
}

// setCookie returns the session cookie a response sets, raw and parsed.
func setCookie(r *confResp) (string, *http.Cookie) {
	for _, v := range r.hdr.Values("Set-Cookie") {
		if strings.HasPrefix(v, auth.CookieName+"=") {
			ck, err := http.ParseSetCookie(v)
			if err != nil {
				return v, nil
			}
			return v, ck
		}
	}
	return "", nil
}

// requireSessionCookie asserts API.md's cookie attributes and returns the
// cookie and its Max-Age.
func (c *confClient) requireSessionCookie(r *confResp) (*http.Cookie, int) {
	c.t.Helper()
	raw, ck := setCookie(r)
	require.NotEmpty(c.t, raw, "no %s cookie: %s", auth.CookieName, r)
	require.NotNil(c.t, ck, "unparsable Set-Cookie %q", raw)
	attrs := map[string]string{}
	for _, p := range strings.Split(raw, ";")[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		attrs[strings.ToLower(k)] = v
	}
	require.Equal(c.t, "/", attrs["path"], "Path=/: %s", raw)
	require.Contains(c.t, attrs, "secure", raw)
	require.Contains(c.t, attrs, "httponly", raw)
	want := "none"
	if c.h.sameSite != "" {
		want = c.h.sameSite
	}
	require.Equal(c.t, want, strings.ToLower(attrs["samesite"]), "SameSite: %s", raw)
	require.NotContains(c.t, attrs, "domain", "no Domain: %s", raw)
	require.Contains(c.t, attrs, "max-age", raw)
	maxAge, err := strconv.Atoi(attrs["max-age"])
	require.NoError(c.t, err, raw)
	require.Regexp(c.t, `^[A-Za-z0-9_-]{22}\.shs_[A-Za-z0-9_-]{43}$`, ck.Value)
	require.Equal(c.t, "no-store", r.hdr.Get("Cache-Control"), "a response setting the cookie is no-store")
	return &http.Cookie{Name: auth.CookieName, Value: ck.Value}, maxAge
}

// requireClearedCookie asserts the cookie is sent with Max-Age=0.
func (c *confClient) requireClearedCookie(r *confResp) {
	c.t.Helper()
	raw, _ := setCookie(r)
	require.NotEmpty(c.t, raw, "no %s cookie: %s", auth.CookieName, r)
	require.Regexp(c.t, `(?i)(^|;\s*)Max-Age=0(;|$)`, raw, "cookie Max-Age=0")
	require.Regexp(c.t, `(?i);\s*Path=/(;|$)`, raw)
	require.Regexp(c.t, `(?i);\s*Secure(;|$)`, raw)
}

// confAccount is a logged-in browser session.
type confAccount struct {
	email, password string
	userID, sid     string
	cookie          *http.Cookie
	csrf            string
	body            map[string]any
}

// signup creates an account and checks the 201.
func (c *confClient) signup(email string) *confAccount {
	c.t.Helper()
	r := c.do("POST", "/auth/signup", map[string]string{"email": email, "password": confPassword})
	require.Equal(c.t, http.StatusCreated, r.code, "signup: %s", r)
	return c.account(r, email, confPassword)
}

// login logs a browser in.
func (c *confClient) login(email, password string) *confAccount {
	c.t.Helper()
	r := c.do("POST", "/auth/login", map[string]string{"email": email, "password": password})
	require.Equal(c.t, http.StatusOK, r.code, "login: %s", r)
	return c.account(r, email, password)
}

func (c *confClient) account(r *confResp, email, password string) *confAccount {
	c.t.Helper()
	m := c.obj(r)
	ck, _ := c.requireSessionCookie(r)
	user, _ := m["user"].(map[string]any)
	sess, _ := m["session"].(map[string]any)
	require.NotNil(c.t, user, "%s", r)
	require.NotNil(c.t, sess, "%s", r)
	csrf, _ := m["csrf_token"].(string)
	return &confAccount{email: email, password: password, userID: str(user["id"]), sid: str(sess["id"]),
		cookie: ck, csrf: csrf, body: m}
}

func str(v any) string { s, _ := v.(string); return s }

// user is a fresh signed-up account.
func (c *confClient) user(tag string) *confAccount { return c.signup(c.email(tag)) }

// token trades a browser session for a JWT (POST /session/token).
func (c *confClient) token(a *confAccount) string {
	c.t.Helper()
	r := c.do("POST", "/session/token", nil, as(a))
	require.Equal(c.t, http.StatusOK, r.code, "/session/token: %s", r)
	return str(c.obj(r)["token"])
}

// jwtParts decodes a JWT's header and claims (no verification).
func jwtParts(t *testing.T, tok string) (hdr, claims map[string]any, signed, sig []byte) {
	t.Helper()
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3, "a JWT: %q", tok)
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		require.NoError(t, err)
		return b
	}
	require.NoError(t, json.Unmarshal(dec(parts[0]), &hdr))
	require.NoError(t, json.Unmarshal(dec(parts[1]), &claims))
	return hdr, claims, []byte(parts[0] + "." + parts[1]), dec(parts[2])
}

// verifyJWT checks tok's EdDSA signature against the server's JWKS and
// returns its claims.
func (c *confClient) verifyJWT(tok string) map[string]any {
	c.t.Helper()
	hdr, claims, signed, sig := jwtParts(c.t, tok)
	require.Equal(c.t, "EdDSA", hdr["alg"])
	kid := str(hdr["kid"])
	require.NotEmpty(c.t, kid, "kid required")
	r := c.do("GET", "/.well-known/jwks.json", nil)
	require.Equal(c.t, http.StatusOK, r.code)
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	require.NoError(c.t, json.Unmarshal(r.body, &set))
	for _, k := range set.Keys {
		if k["kid"] == kid {
			x, err := base64.RawURLEncoding.DecodeString(str(k["x"]))
			require.NoError(c.t, err)
			require.Len(c.t, x, ed25519.PublicKeySize)
			require.True(c.t, ed25519.Verify(ed25519.PublicKey(x), signed, sig), "JWT signature")
			return claims
		}
	}
	c.t.Fatalf("kid %q not in the JWKS %s", kid, r.body)
	return nil
}

// wsURL is the socket endpoint with an optional raw query.
func (c *confClient) wsURL(query string) string {
	u := "ws" + strings.TrimPrefix(c.h.srv.url, "http") + "/ws"
	if query != "" {
		u += "?" + query
	}
	return u
}

// dial opens a socket; on refusal it returns the HTTP response (body of at
// most 1 KiB, as the websocket library keeps).
func (c *confClient) dial(query string, hdr http.Header, protos ...string) (*websocket.Conn, *confResp, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, c.wsURL(query), &websocket.DialOptions{
		HTTPClient: c.http, HTTPHeader: hdr, Subprotocols: protos,
	})
	var r *confResp
	if resp != nil {
		r = &confResp{code: resp.StatusCode, hdr: resp.Header}
		if resp.Body != nil && err != nil {
			r.body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
	}
	if ws != nil {
		c.t.Cleanup(func() { ws.CloseNow() })
	}
	return ws, r, err
}

// ws opens a socket with a bearer JWT and returns it with its welcome.
func (c *confClient) ws(jwt string) (*websocket.Conn, map[string]any) {
	c.t.Helper()
	ws, r, err := c.dial("", http.Header{"Authorization": {"Bearer " + jwt}})
	require.NoError(c.t, err, "handshake: %v", r)
	w := c.frame(ws)
	require.Equal(c.t, "welcome", w["type"], "first frame: %v", w)
	return ws, w
}

// frame reads the next text frame as a JSON object.
func (c *confClient) frame(ws *websocket.Conn) map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, data, err := ws.Read(ctx)
	require.NoError(c.t, err)
	require.Equal(c.t, websocket.MessageText, typ, "frames are text")
	var m map[string]any
	require.NoError(c.t, json.Unmarshal(data, &m), "frame: %s", data)
	return m
}

// await reads frames until one satisfies pred.
func (c *confClient) await(ws *websocket.Conn, what string, pred func(map[string]any) bool) map[string]any {
	c.t.Helper()
	for range 1000 {
		if m := c.frame(ws); pred(m) {
			return m
		}
	}
	c.t.Fatalf("no frame %s", what)
	return nil
}

// send writes one JSON text frame.
func (c *confClient) send(ws *websocket.Conn, v any) {
	c.t.Helper()
	data, err := json.Marshal(v)
	require.NoError(c.t, err)
	c.sendRaw(ws, websocket.MessageText, data)
}

func (c *confClient) sendRaw(ws *websocket.Conn, typ websocket.MessageType, data []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(c.t, ws.Write(ctx, typ, data))
}

// closed reads until the server closes ws and returns code and reason.
func (c *confClient) closed(ws *websocket.Conn) (websocket.StatusCode, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			var ce websocket.CloseError
			if asCloseError(err, &ce) {
				return ce.Code, ce.Reason
			}
			return websocket.CloseStatus(err), err.Error()
		}
	}
}

func asCloseError(err error, ce *websocket.CloseError) bool {
	for e := err; e != nil; {
		if x, ok := e.(websocket.CloseError); ok {
			*ce = x
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

// headerNames is the sorted set of header names of r.
func headerNames(r *confResp) []string {
	var names []string
	for k := range r.hdr {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// q escapes a query value.
func q(s string) string { return url.QueryEscape(s) }

var (
	uuidRe    = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	sessIDRe  = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)
	refreshRe = regexp.MustCompile(`^[A-Za-z0-9_-]{22}\.shr_[A-Za-z0-9_-]{43}$`)
)

// requireTime asserts an RFC 3339 timestamp string.
func requireTime(t *testing.T, v any, field string) time.Time {
	t.Helper()
	s, ok := v.(string)
	require.True(t, ok, "%s is a string: %v", field, v)
	tm, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err, "%s is RFC 3339: %q", field, s)
	return tm
}

// requireUser asserts API.md's user object.
func requireUser(t *testing.T, v any) map[string]any {
	t.Helper()
	u, ok := v.(map[string]any)
	require.True(t, ok, "user is an object: %v", v)
	requireKeys(t, u, "id", "email", "name", "created_at")
	require.Regexp(t, uuidRe, u["id"])
	requireTime(t, u["created_at"], "user.created_at")
	return u
}

// requireSession asserts API.md's session object.
func requireSession(t *testing.T, v any) map[string]any {
	t.Helper()
	s, ok := v.(map[string]any)
	require.True(t, ok, "session is an object: %v", v)
	requireKeys(t, s, "id", "kind", "created_at", "last_seen_at", "expires_at", "ip", "user_agent", "device", "current")
	require.Regexp(t, sessIDRe, s["id"])
	require.Contains(t, []any{"browser", "refresh", "service"}, s["kind"])
	requireTime(t, s["created_at"], "session.created_at")
	requireTime(t, s["last_seen_at"], "session.last_seen_at")
	requireTime(t, s["expires_at"], "session.expires_at")
	_, isBool := s["current"].(bool)
	require.True(t, isBool, "current is a boolean")
	return s
}
