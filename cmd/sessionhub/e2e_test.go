package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/auth"
	"github.com/sessionhub/sessionhub/internal/testenv"
)

// syncBuffer is a bytes.Buffer safe for the server's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// server is a running `sessionhub serve` started through run.
type server struct {
	t       *testing.T
	url     string // http://127.0.0.1:port
	metrics string
	logs    *syncBuffer
	stop    context.CancelFunc
	done    chan error
	client  *http.Client
}

// addrRe finds the bound addresses in the "listening" line, text or JSON.
var (
	addrRe        = regexp.MustCompile(`(?:^|[ {,])"?addr"?[=:]"?([^" ,}]+)`)
	metricsAddrRe = regexp.MustCompile(`"?metrics_addr"?[=:]"?([^" ,}]+)`)
)

// startServer runs `sessionhub serve` on 127.0.0.1:0 with env and waits
// for /healthz.
func startServer(t *testing.T, env map[string]string, args ...string) *server {
	t.Helper()
	full := map[string]string{"SESSIONHUB_ADDR": "127.0.0.1:0", "SESSIONHUB_METRICS_ADDR": "127.0.0.1:0"}
	for k, v := range env {
		full[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{t: t, logs: &syncBuffer{}, stop: cancel, done: make(chan error, 1)}
	tr := &http.Transport{}
	s.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	go func() {
		s.done <- run(ctx, append([]string{"sessionhub", "serve"}, args...), envOf(full), strings.NewReader(""), io.Discard, s.logs)
	}()
	t.Cleanup(func() {
		s.shutdown()
		tr.CloseIdleConnections()
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		if line := s.logLine("listening"); line != "" {
			s.url = "http://" + addrRe.FindStringSubmatch(line)[1]
			s.metrics = "http://" + metricsAddrRe.FindStringSubmatch(line)[1]
			break
		}
		select {
		case err := <-s.done:
			cancel()
			s.stop = nil // nothing left to stop
			t.Fatalf("serve stopped before listening: %v\nlogs:\n%s", err, s.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not log its address; logs:\n%s", s.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for {
		resp, err := s.client.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz never answered 200: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// shutdown cancels run's context, as SIGTERM does, and waits for it; API.md
// bounds the shutdown at 10 s.
func (s *server) shutdown() error {
	if s.stop == nil {
		return nil
	}
	s.stop()
	s.stop = nil
	select {
	case err := <-s.done:
		return err
	case <-time.After(15 * time.Second):
		s.t.Fatalf("serve did not stop after cancel; logs:\n%s", s.logs)
		return nil
	}
}

func (s *server) logLine(substr string) string {
	for _, line := range strings.Split(s.logs.String(), "\n") {
		if strings.Contains(line, substr) {
			return line
		}
	}
	return ""
}

// waitLogLine is logLine for lines the asynchronous access log writes: it
// waits up to ten seconds for the line to appear.
func (s *server) waitLogLine(substr string) string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		line := s.logLine(substr)
		if line != "" || time.Now().After(deadline) {
			return line
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *server) get(path string) (int, string) {
	s.t.Helper()
	resp, err := s.client.Get(s.url + path)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (s *server) readyz() (int, readiness) {
	s.t.Helper()
	code, body := s.get("/readyz")
	var rd readiness
	require.NoError(s.t, json.Unmarshal([]byte(body), &rd), body)
	return code, rd
}

func TestServeMemory(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)

	first, _, _ := strings.Cut(s.logs.String(), "\n")
	require.Contains(t, first, "in-memory")
	require.Contains(t, first, "lost on restart")
	require.Contains(t, first, "level=", "memory mode logs text")

	code, body := s.get("/healthz")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"status":"ok"}`, body)

	code, rd := s.readyz()
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, readiness{Status: "ok", Redis: "ok", Postgres: "ok"}, rd)

	// Wired: the auth routes, the JWKS and the pages answer.
	code, body = s.get("/.well-known/jwks.json")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"alg":"EdDSA"`)
	code, _ = s.get("/login")
	require.Equal(t, http.StatusOK, code)
	req0, _ := http.NewRequest(http.MethodPut, s.url+"/auth/login", nil)
	resp0, err := s.client.Do(req0)
	require.NoError(t, err)
	resp0.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp0.StatusCode, "a wrong method on an API route")
	require.Equal(t, "POST", resp0.Header.Get("Allow"))

	// The access log names the route pattern and the presented session's
	// public id, never its secret, the query string or the raw path.
	secret := "shs_" + strings.Repeat("A", 43)
	req, _ := http.NewRequest(http.MethodGet, s.url+"/session?token=querysecret", nil)
	req.AddCookie(&http.Cookie{Name: auth.CookieName, Value: "AAAAAAAAAAAAAAAAAAAAAA." + secret})
	req.Header.Set("X-Request-Id", "req-123")
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Equal(t, "req-123", resp.Header.Get("X-Request-Id"))
	line := s.waitLogLine("request_id=req-123")
	require.NotEmpty(t, line, s.logs.String())
	require.Contains(t, line, "route=/session")
	require.Contains(t, line, "status=401")
	require.Contains(t, line, "session_id=AAAAAAAAAAAAAAAAAAAAAA")
	require.NotContains(t, s.logs.String(), secret)
	require.NotContains(t, s.logs.String(), "querysecret")

	// 431 past 16 KiB of headers; 413 for a body over 64 KiB.
	req, _ = http.NewRequest(http.MethodGet, s.url+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("x", 17<<10))
	resp, err = s.client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"), "API.md's error body")
	req, _ = http.NewRequest(http.MethodGet, s.url+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("x", 70<<10))
	resp, err = s.client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode, "past net/http's own limit too")
	req, _ = http.NewRequest(http.MethodGet, s.url+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("x", 12<<10))
	resp, err = s.client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	resp, err = s.client.Post(s.url+"/auth/login", "application/json", bytes.NewReader(make([]byte, 64<<10+1)))
	require.NoError(t, err)
	body2, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	require.Contains(t, string(body2), `"too_large"`)

	// Metrics: only on the metrics listener, labelled by route pattern.
	resp, err = s.client.Get(s.metrics + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(metrics), `sessionhub_http_request_duration_seconds_count{code="401",method="GET",route="/session"}`)
	require.Contains(t, string(metrics), "go_goroutines")
	require.Contains(t, string(metrics), "process_cpu_seconds_total")
	code, _ = s.get("/metrics")
	require.NotEqual(t, http.StatusOK, code, "/metrics must not be on the public port")

	resp, err = s.client.Post(s.metrics+"/debug/gc", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// The healthcheck subcommand probes the running server.
	var stderr bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"sessionhub", "healthcheck", "--url", s.url + "/healthz"},
		envOf(nil), nil, io.Discard, &stderr))
	require.Error(t, run(context.Background(), []string{"sessionhub", "healthcheck", "--url", s.url + "/nope"},
		envOf(nil), nil, io.Discard, &stderr))

	// SIGTERM: run returns, within API.md's 10 s (shutdown fails the test
	// past 15 s).
	require.NoError(t, s.shutdown())
	require.NotEmpty(t, s.logLine("shutting down"))
	require.NotEmpty(t, s.logLine("stopped"))
}

func TestServeRedisPostgres(t *testing.T) {
	t.Parallel()
	_, prefix := testenv.Redis(t)
	s := startServer(t, map[string]string{
		"REDIS_URL":               testenv.RedisURL(),
		"DATABASE_URL":            testenv.SchemaURL(t),
		"SESSIONHUB_REDIS_PREFIX": prefix,
	})
	first, _, _ := strings.Cut(s.logs.String(), "\n")
	var rec map[string]any
	require.NoError(t, json.Unmarshal([]byte(first), &rec), "production logs JSON: %s", first)
	require.Equal(t, "redis+postgres", rec["mode"])

	code, rd := s.readyz()
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, readiness{Status: "ok", Redis: "ok", Postgres: "ok"}, rd)

	// A signup lands in Postgres and Redis through the wired auth server.
	resp, err := s.client.Post(s.url+"/auth/signup", "application/json",
		strings.NewReader(`{"email":"e2e@example.com","password":"correct horse battery"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.NoError(t, s.shutdown())
}

func TestServeDegradedWhenRedisDown(t *testing.T) {
	t.Parallel()
	rs := testenv.StartRedis(t)
	s := startServer(t, map[string]string{
		"REDIS_URL":    rs.URL(),
		"DATABASE_URL": testenv.SchemaURL(t),
	})
	code, rd := s.readyz()
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok", rd.Status)

	rs.Kill()
	code, rd = s.readyz()
	require.Equal(t, http.StatusOK, code, "one store down keeps the node in the load balancer")
	require.Equal(t, readiness{Status: "degraded", Redis: "down", Postgres: "ok"}, rd)
	require.NoError(t, s.shutdown())
}

// emptySchemaURL is a DATABASE_URL on a fresh schema with no migration
// applied.
func emptySchemaURL(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	pool, err := openPostgres(ctx, testenv.DatabaseURL())
	require.NoError(t, err)
	schema := fmt.Sprintf("e2e_empty_%d", time.Now().UnixNano())
	_, err = pool.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		pool.Close()
	})
	sep := "?"
	if strings.Contains(testenv.DatabaseURL(), "?") {
		sep = "&"
	}
	return testenv.DatabaseURL() + sep + "search_path=" + schema
}

func TestServeRefusesOutOfDateSchema(t *testing.T) {
	t.Parallel()
	_, prefix := testenv.Redis(t)
	env := map[string]string{
		"SESSIONHUB_ADDR": "127.0.0.1:0", "SESSIONHUB_METRICS_ADDR": "127.0.0.1:0",
		"REDIS_URL": testenv.RedisURL(), "DATABASE_URL": emptySchemaURL(t), "SESSIONHUB_REDIS_PREFIX": prefix,
	}
	var logs syncBuffer
	err := run(context.Background(), []string{"sessionhub", "serve"}, envOf(env), nil, io.Discard, &logs)
	require.Error(t, err)
	require.Contains(t, err.Error(), "out of date")
	require.Contains(t, err.Error(), "sessionhub migrate")
	require.Contains(t, err.Error(), "--migrate")
	var out bytes.Buffer
	require.Equal(t, 1, report(err, &out))
	require.Equal(t, 1, strings.Count(out.String(), "\n"))

	// serve --migrate applies the migrations first, then serves.
	s := startServer(t, env, "--migrate")
	require.NotEmpty(t, s.logLine("database migrated"))
	code, rd := s.readyz()
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok", rd.Status)
	require.NoError(t, s.shutdown())
}

func TestServeBadConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SESSIONHUB_SEND_QUEUE": "lots"}, "SESSIONHUB_SEND_QUEUE"},
		{map[string]string{"REDIS_URL": "redis://127.0.0.1:6379"}, "DATABASE_URL"},
		{map[string]string{"SESSIONHUB_KEYS_FILE": "/nonexistent/keys.json"}, "SESSIONHUB_KEYS_FILE"},
		{map[string]string{"SESSIONHUB_KEYS_FILE": "e2e_test.go"}, "SESSIONHUB_KEYS_FILE"},
	}
	for _, tc := range cases {
		var logs syncBuffer
		err := run(context.Background(), []string{"sessionhub", "serve"}, envOf(tc.env), nil, io.Discard, &logs)
		require.Error(t, err)
		var out bytes.Buffer
		require.Equal(t, 2, report(err, &out), err.Error())
		require.Equal(t, 1, strings.Count(out.String(), "\n"), out.String())
		require.Contains(t, out.String(), tc.want)
	}
}

func TestReadyzStates(t *testing.T) {
	t.Parallel()
	down := errors.New("down")
	cases := []struct {
		hot, durable error
		draining     bool
		code         int
		want         readiness
	}{
		{nil, nil, false, 200, readiness{"ok", "ok", "ok"}},
		{down, nil, false, 200, readiness{"degraded", "down", "ok"}},
		{nil, down, false, 200, readiness{"degraded", "ok", "down"}},
		{down, down, false, 503, readiness{"unavailable", "down", "down"}},
		{nil, nil, true, 503, readiness{"draining", "ok", "ok"}},
	}
	for _, tc := range cases {
		var draining atomic.Bool
		draining.Store(tc.draining)
		h := handleReadyz(fakeHealth{tc.hot, tc.durable}, &draining)
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		require.Equal(t, tc.code, rec.Code)
		var got readiness
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
		require.Equal(t, tc.want, got)
	}
}

type fakeHealth struct{ hot, durable error }

func (f fakeHealth) Health(context.Context) (error, error) { return f.hot, f.durable }
