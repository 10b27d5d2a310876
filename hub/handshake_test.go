package hub

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/internal/testenv"
)

func redisNode(t *testing.T, tweak func(*Config)) (*node, *fakeAuth) {
	rdb, prefix := testenv.Redis(t)
	auth := newFakeAuth()
	return startNode(t, auth, rdb, prefix, tweak), auth
}

// refusal dials and returns the HTTP status and body of a refused handshake.
func refusal(t *testing.T, url string, hdr http.Header, protocols ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: hdr, Subprotocols: protocols})
	if c != nil {
		_ = c.CloseNow()
		t.Fatalf("handshake to %s was accepted", url)
	}
	require.Error(t, err)
	require.NotNil(t, resp)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

func TestHandshakeRefusals(t *testing.T) {
	t.Parallel()
	n, auth := redisNode(t, nil)
	tok := auth.token("u1", "S1")
	dead := auth.token("u2", "S2")
	auth.set("S2", SessionRevoked)
	cookie := auth.cookie("u3", "S3")

	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	cases := []struct {
		name   string
		url    string
		hdr    http.Header
		protos []string
		status int
		result string
	}{
		{"no token", n.wsURL(), nil, nil, 401, resultNoToken},
		{"query token", n.wsURL() + "?token=" + tok, nil, nil, 401, resultQueryToken},
		{"query token beside a bearer", n.wsURL() + "?access_token=x", bearer(tok), nil, 401, resultQueryToken},
		{"query jwt-shaped value", n.wsURL() + "?x=eyJhbGciOiJFZERTQSJ9.e30.sig", bearer(tok), nil, 401, resultQueryToken},
		{"unknown token", n.wsURL(), bearer("nope"), nil, 401, resultInvalidToken},
		{"other scheme", n.wsURL(), http.Header{"Authorization": {"Session abc.def"}}, nil, 401, resultInvalidToken},
		{"dead session", n.wsURL(), bearer(dead), nil, 401, resultDeadSession},
		{"bad origin with bearer", n.wsURL(), http.Header{"Authorization": {"Bearer " + tok}, "Origin": {"https://evil.example"}}, nil, 403, resultOrigin},
		{"null origin", n.wsURL(), http.Header{"Authorization": {"Bearer " + tok}, "Origin": {"null"}}, nil, 403, resultOrigin},
		{"cookie without origin", n.wsURL(), http.Header{"Cookie": {"__Host-sessionhub=" + cookie}}, nil, 403, resultOrigin},
		{"cookie with bad origin", n.wsURL(), http.Header{"Cookie": {"__Host-sessionhub=" + cookie}, "Origin": {"https://evil.example"}}, nil, 403, resultOrigin},
		{"bad cookie", n.wsURL(), http.Header{"Cookie": {"__Host-sessionhub=zzz"}, "Origin": {testOrigin}}, nil, 401, resultInvalidToken},
		{"dead session by subprotocol", n.wsURL(), nil, []string{Subprotocol, "bearer." + dead}, 401, resultDeadSession},
	}
	for _, tc := range cases {
		before := counterWith(n, "sessionhub_hub_connects_total", "result", tc.result)
		status, body := refusal(t, tc.url, tc.hdr, tc.protos...)
		require.Equal(t, tc.status, status, tc.name)
		require.Contains(t, body, `"error":`, tc.name)
		require.NotContains(t, body, tok, tc.name)
		require.Equal(t, before+1, counterWith(n, "sessionhub_hub_connects_total", "result", tc.result), tc.name)
	}
}

func TestHandshakeSubprotocolBearer(t *testing.T) {
	t.Parallel()
	n, auth := redisNode(t, nil)
	tok := auth.token("u1", "S1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, n.wsURL(), &websocket.DialOptions{
		Subprotocols: []string{Subprotocol, "bearer." + tok},
		HTTPHeader:   http.Header{"Origin": {testOrigin}},
	})
	require.NoError(t, err)
	defer c.CloseNow()
	require.Equal(t, Subprotocol, c.Subprotocol())
	require.Equal(t, Subprotocol, resp.Header.Get("Sec-WebSocket-Protocol"))
	for _, vs := range resp.Header {
		for _, v := range vs {
			require.NotContains(t, v, tok)
		}
	}
	cl := &client{t: t, c: c}
	w := cl.read()
	require.Equal(t, "welcome", w["type"])
	require.Equal(t, float64(10), w["heartbeat_s"])
}

func TestHandshakeCookieWithAllowedOrigin(t *testing.T) {
	t.Parallel()
	n, auth := redisNode(t, nil)
	cookie := auth.cookie("u3", "S3")
	c, _, err := dialRaw(n, "", http.Header{"Cookie": {"__Host-sessionhub=" + cookie}, "Origin": {"HTTPS://APP.EXAMPLE:443"}})
	require.NoError(t, err)
	defer c.CloseNow()
	cl := &client{t: t, c: c}
	w := cl.read()
	require.Equal(t, "u3", w["user_id"])
	require.Equal(t, "S3", w["session_id"])
}

func TestHandshakeRefusedWhileDraining(t *testing.T) {
	t.Parallel()
	n, auth := redisNode(t, nil)
	require.True(t, n.h.Ready())
	require.NoError(t, n.h.Shutdown(context.Background()))
	require.False(t, n.h.Ready())
	status, body := refusal(t, n.wsURL(), http.Header{"Authorization": {"Bearer " + auth.token("u1", "S1")}})
	require.Equal(t, 503, status)
	require.True(t, strings.Contains(body, "unavailable"))
}

// A request that is not a well-formed WebSocket handshake (curl, or a proxy
// that dropped the upgrade headers) is refused with the JSON error body,
// never websocket.Accept's text/plain (conformance D2).
func TestHandshakeNotAnUpgrade(t *testing.T) {
	t.Parallel()
	n, auth := redisNode(t, nil)
	tok := auth.token("u1", "S1")
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	upgrade := func(version, key string) http.Header {
		h := http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}}
		if version != "" {
			h.Set("Sec-WebSocket-Version", version)
		}
		if key != "" {
			h.Set("Sec-WebSocket-Key", key)
		}
		return h
	}
	cases := []struct {
		name   string
		hdr    http.Header
		status int
		code   string
	}{
		{"plain GET", nil, 426, "upgrade_required"},
		{"no Upgrade header", http.Header{"Connection": {"Upgrade"}, "Sec-WebSocket-Version": {"13"}, "Sec-WebSocket-Key": {key}}, 426, "upgrade_required"},
		{"upgrade to something else", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"h2c"}, "Sec-WebSocket-Version": {"13"}, "Sec-WebSocket-Key": {key}}, 426, "upgrade_required"},
		{"no version", upgrade("", key), 400, "bad_request"},
		{"old version", upgrade("8", key), 400, "bad_request"},
		{"no key", upgrade("13", ""), 400, "bad_request"},
		{"short key", upgrade("13", "c2hvcnQ="), 400, "bad_request"},
		{"key not base64", upgrade("13", "!!!!!!!!!!!!!!!!!!!!!!!!"), 400, "bad_request"},
	}
	for _, tc := range cases {
		before := counterWith(n, "sessionhub_hub_connects_total", "result", resultBadRequest)
		req, err := http.NewRequest(http.MethodGet, n.srv.URL+"/ws", nil)
		require.NoError(t, err)
		for k, vs := range tc.hdr {
			req.Header[k] = vs
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := n.srv.Client().Do(req)
		require.NoError(t, err, tc.name)
		var body map[string]string
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body), tc.name)
		resp.Body.Close()
		require.Equal(t, tc.status, resp.StatusCode, tc.name)
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"), tc.name)
		require.Equal(t, tc.code, body["error"], tc.name)
		require.NotEmpty(t, body["message"], tc.name)
		require.Len(t, body, 2, tc.name)
		require.Equal(t, "13", resp.Header.Get("Sec-WebSocket-Version"), tc.name)
		if tc.status == 426 {
			require.Equal(t, "websocket", resp.Header.Get("Upgrade"), tc.name)
		}
		require.Equal(t, before+1, counterWith(n, "sessionhub_hub_connects_total", "result", resultBadRequest), tc.name)
	}
	require.Zero(t, n.h.Connections())
}

// Every 503 of the hub (a draining node's handshake, a store that did not
// answer) tells the client when to come back, as the auth routes' do
// (README: 503 unavailable comes with Retry-After).
func TestUnavailableCarriesRetryAfter(t *testing.T) {
	t.Parallel()
	n, auth := redisNode(t, nil)
	require.NoError(t, n.h.Shutdown(context.Background()))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, n.wsURL(), &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + auth.token("u1", "S1")}},
	})
	require.Error(t, err)
	require.NotNil(t, resp)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))

	rec := httptest.NewRecorder()
	writeError(rec, http.StatusServiceUnavailable, "unavailable", "the message could not be published")
	require.Equal(t, "1", rec.Header().Get("Retry-After"))
	rec = httptest.NewRecorder()
	writeError(rec, http.StatusForbidden, "forbidden", "no")
	require.Empty(t, rec.Header().Get("Retry-After"))
}
