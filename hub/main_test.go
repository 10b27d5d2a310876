package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv("HUB_BENCH_CLIENT") == "1" {
		os.Exit(clientProcess())
	}
	goleak.VerifyTestMain(m,
		// go-redis' pool keeps a background dialer goroutine briefly after Close.
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"),
	)
}

// fakeAuth is a hand-written Verifier + Sessions: tokens and cookies map to
// identities, sessions have a state the test sets. (Not storage: the
// storage under test is Redis pub/sub, which is real.)
type fakeAuth struct {
	mu      sync.Mutex
	tokens  map[string]Identity
	states  map[string]SessionState
	cookies map[string]Identity
	down    bool
	auto    bool // accept "auto.<n>" tokens as user u<n>, session s<n> (benchmarks)
}

func newFakeAuth() *fakeAuth {
	return &fakeAuth{tokens: map[string]Identity{}, states: map[string]SessionState{}, cookies: map[string]Identity{}}
}

// token registers an identity and returns a bearer token for it.
func (f *fakeAuth) token(user, session string, scopes ...string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	tok := fmt.Sprintf("jwt.%s.%s.%d", user, session, len(f.tokens))
	f.tokens[tok] = Identity{UserID: user, SessionID: session, Scopes: scopes}
	if _, ok := f.states[session]; !ok {
		f.states[session] = SessionAlive
	}
	return tok
}

func (f *fakeAuth) serviceToken(user, session, service string, scopes ...string) string {
	tok := f.token(user, session, scopes...)
	f.mu.Lock()
	id := f.tokens[tok]
	id.Service = service
	f.tokens[tok] = id
	f.mu.Unlock()
	return tok
}

func (f *fakeAuth) cookie(user, session string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := "c" + session
	f.cookies[v] = Identity{UserID: user, SessionID: session}
	f.states[session] = SessionAlive
	return v
}

func (f *fakeAuth) set(session string, st SessionState) {
	f.mu.Lock()
	f.states[session] = st
	f.mu.Unlock()
}

func (f *fakeAuth) Verify(_ context.Context, tok string) (Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.tokens[tok]
	if !ok {
		if n, auto := strings.CutPrefix(tok, "auto."); auto && f.auto {
			return Identity{UserID: "u" + n, SessionID: "s" + n, Scopes: []string{"sub:bench:*"}}, nil
		}
		return Identity{}, ErrInvalidToken
	}
	return id, nil
}

func (f *fakeAuth) Status(_ context.Context, ids []string) ([]SessionState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errors.New("store down")
	}
	out := make([]SessionState, len(ids))
	for i, id := range ids {
		st, ok := f.states[id]
		if !ok && f.auto {
			st, ok = SessionAlive, true
		}
		if !ok {
			st = SessionRevoked
		}
		out[i] = st
	}
	return out, nil
}

func (f *fakeAuth) FromCookie(_ http.ResponseWriter, r *http.Request) (Identity, error) {
	c, err := r.Cookie("__Host-sessionhub")
	if err != nil {
		return Identity{}, ErrInvalidToken
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.cookies[c.Value]
	if !ok || f.states[id.SessionID] != SessionAlive {
		return Identity{}, ErrInvalidToken
	}
	return id, nil
}

// authDeps is what a test node authenticates with: fakeAuth, or benchAuth
// in benchmarks.
type authDeps interface {
	Verifier
	Sessions
}

// node is one hub behind an httptest server.
type node struct {
	h   *Hub
	srv *httptest.Server
	reg *prometheus.Registry
}

func (n *node) wsURL() string { return "ws" + strings.TrimPrefix(n.srv.URL, "http") + "/ws" }

const testOrigin = "https://app.example"

// startNode starts a hub on rdb (nil: memory broker) and stops it at the
// end of the test.
func startNode(t testing.TB, auth authDeps, rdb redis.UniversalClient, prefix string, tweak func(*Config)) *node {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := Config{Prefix: prefix, AllowedOrigins: []string{testOrigin}, Registerer: reg, Heartbeat: 10 * time.Second}
	if tweak != nil {
		tweak(&cfg)
	}
	h, err := New(cfg, Deps{Verifier: auth, Sessions: auth, Redis: rdb})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", h.ServeWS)
	mux.HandleFunc("POST /api/publish", h.HandlePublish)
	srv := httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.Run(ctx) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = h.Shutdown(sctx)
		scancel()
		cancel()
		<-done
		srv.Close()
	})
	// Wait for the control subscriptions, so no revocation is missed.
	if rb, ok := h.br.(*redisBroker); ok {
		waitReady(t, rb.control.want(revocationChannel))
		rb.control.unwant(revocationChannel)
	}
	return &node{h: h, srv: srv, reg: reg}
}

func waitReady(t testing.TB, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatal("subscription not confirmed")
	}
}

// client is a test socket.
type client struct {
	t       testing.TB
	c       *websocket.Conn
	welcome map[string]any
}

func dial(t testing.TB, n *node, token string) *client {
	t.Helper()
	c, resp, err := dialRaw(n, token, nil)
	require.NoError(t, err)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	cl := &client{t: t, c: c}
	t.Cleanup(func() { _ = c.CloseNow() })
	cl.welcome = cl.read()
	require.Equal(t, "welcome", cl.welcome["type"])
	return cl
}

func dialRaw(n *node, token string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if hdr == nil {
		hdr = http.Header{}
	}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	c, resp, err := websocket.Dial(ctx, n.wsURL(), &websocket.DialOptions{HTTPHeader: hdr})
	if c != nil {
		c.SetReadLimit(1 << 20)
	}
	return c, resp, err
}

// read returns the next message, failing the test on error.
func (c *client) read() map[string]any {
	c.t.Helper()
	m, err := c.next(10 * time.Second)
	require.NoError(c.t, err)
	return m
}

func (c *client) next(d time.Duration) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var m map[string]any
	err := wsjson.Read(ctx, c.c, &m)
	return m, err
}

func (c *client) send(v any) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(c.t, wsjson.Write(ctx, c.c, v))
}

// closeCode reads until the socket ends and returns the close code.
func (c *client) closeCode() websocket.StatusCode {
	c.t.Helper()
	for {
		_, err := c.next(10 * time.Second)
		if err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

// request sends a message and returns the first reply of type ack or error.
func (c *client) request(v map[string]any) map[string]any {
	c.t.Helper()
	c.send(v)
	for {
		m := c.read()
		if m["type"] == "ack" || m["type"] == "error" {
			return m
		}
	}
}

// eventually polls cond (no timed assertion: it only bounds a hang).
func eventually(t testing.TB, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 5*time.Millisecond)
}

func postPublish(t testing.TB, n *node, token, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, n.srv.URL+"/api/publish", strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// testutilCounter sums a metric family's values on the node's registry.
func testutilCounter(n *node, name string) float64 {
	mfs, err := n.reg.Gather()
	if err != nil {
		return -1
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				total += m.Counter.GetValue()
			case m.Gauge != nil:
				total += m.Gauge.GetValue()
			case m.Histogram != nil:
				total += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return total
}

// counterWith returns one labelled series' value.
func counterWith(n *node, name, label, value string) float64 {
	mfs, _ := n.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value && m.Counter != nil {
					return m.Counter.GetValue()
				}
			}
		}
	}
	return 0
}
