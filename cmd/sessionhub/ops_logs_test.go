package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/sessions"
)

// accessRecord is one JSON access-log line of httpMetrics.observe.
type accessRecord struct {
	Msg        string   `json:"msg"`
	Method     string   `json:"method"`
	Route      string   `json:"route"`
	Status     int      `json:"status"`
	DurationMS *float64 `json:"duration_ms"`
	RequestID  string   `json:"request_id"`
	SessionID  string   `json:"session_id"`
}

// accessLines parses the JSON log for its access lines.
func accessLines(t *testing.T, logs string) []accessRecord {
	t.Helper()
	var out []accessRecord
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec accessRecord
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "every production log line is JSON: %s", line)
		if rec.Msg == "http request" {
			out = append(out, rec)
		}
	}
	return out
}

// TestLogsHoldNoSecrets captures the production (JSON) log of a whole
// login → token → socket → publish → logout run, plus a mobile login and a
// refresh, and finds in it none of the secrets the server handed out or
// was given; and it finds exactly one access line per request, naming the
// route pattern, status, duration, request id and the presented session's
// public id.
func TestLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	env := opsEnv(t)
	env["SESSIONHUB_LOG_LEVEL"] = "debug" // the most a node will ever log
	worker := newWorker(t, env)
	s := startServer(t, env)
	j := runJourney(t, s, worker, true)

	// Make sure the /ws line has landed (its handler returns after the
	// upgrade, not at close), then stop the node so that the shutdown lines
	// are in the log too.
	s.waitLogLine(`"route":"/ws"`)
	require.NoError(t, s.shutdown())
	logs := s.logs.String()

	for what, secret := range j.secrets {
		require.NotContains(t, logs, secret, "the log holds the %s", what)
	}
	require.NotContains(t, logs, j.randPath, "the raw path of an unmatched route is not logged")

	// One access line per request of the journey, as expected, in any
	// order. Probes (/healthz from startServer) log at debug and count
	// apart.
	var got []accessLine
	ids := map[string]bool{}
	for _, rec := range accessLines(t, logs) {
		require.NotNil(t, rec.DurationMS, "duration_ms in %+v", rec)
		require.NotEmpty(t, rec.RequestID, "%+v", rec)
		require.False(t, ids[rec.RequestID], "request id %s on two lines", rec.RequestID)
		ids[rec.RequestID] = true
		require.NotEmpty(t, rec.Method)
		require.True(t, strings.HasPrefix(rec.Route, "/") || rec.Route == "unmatched", rec.Route)
		if rec.Route == "/healthz" || rec.Route == "/readyz" {
			continue
		}
		got = append(got, accessLine{rec.Route, rec.Status, rec.SessionID})
	}
	sortLines := func(l []accessLine) []string {
		out := make([]string, 0, len(l))
		for _, a := range l {
			out = append(out, fmt.Sprintf("%s %d session_id=%q", a.route, a.status, a.sessionID))
		}
		slices.Sort(out)
		return out
	}
	require.Equal(t, sortLines(j.expected), sortLines(got))
}

// TestAccessLogNamesVerifiedJWTSession: a request authenticated by a JWT
// (POST /api/publish, GET /ws with the token in the header or the
// subprotocol) logs the session id the token proved once verified; a
// forged token (another sid under the real signature), a garbage one or a
// token in another scheme logs none, and no line holds a token.
func TestAccessLogNamesVerifiedJWTSession(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	cookie, csrf := s.signup("jwtlog@example.com")
	sid := publicID(cookie.Value)
	resp := s.post("/session/token", cookie, csrf)
	var tok struct{ Token string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// The forgery claims another session under the real signature.
	other := sessions.NewToken().ID
	parts := strings.Split(tok.Token, ".")
	require.Len(t, parts, 3)
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	require.Contains(t, string(payload), `"sid":"`+sid+`"`)
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(
		[]byte(strings.Replace(string(payload), sid, other, 1))) + "." + parts[2]

	publish := func(reqID, authz string) int {
		req, _ := http.NewRequest(http.MethodPost, s.url+"/api/publish", strings.NewReader(`{"channel":"room:a","data":1}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", authz)
		req.Header.Set("X-Request-Id", reqID)
		resp, err := s.client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	// No pub grant: 403, but only after the token was verified.
	require.Equal(t, http.StatusForbidden, publish("pub-valid", "Bearer "+tok.Token))
	require.Equal(t, http.StatusUnauthorized, publish("pub-forged", "Bearer "+forged))
	require.Equal(t, http.StatusUnauthorized, publish("pub-garbage", "Bearer "+sid+".x.y"))
	require.Equal(t, http.StatusUnauthorized, publish("pub-scheme", "Token "+tok.Token))

	dial := func(reqID string, opts websocket.DialOptions) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		opts.HTTPClient = s.client
		if opts.HTTPHeader == nil {
			opts.HTTPHeader = http.Header{}
		}
		opts.HTTPHeader.Set("X-Request-Id", reqID)
		ws, hresp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/ws", &opts)
		if hresp != nil && hresp.Body != nil {
			hresp.Body.Close()
		}
		if err == nil {
			ws.CloseNow()
		}
	}
	dial("ws-header", websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok.Token}}})
	dial("ws-subprotocol", websocket.DialOptions{Subprotocols: []string{"sessionhub.v1", "bearer." + tok.Token}})
	dial("ws-forged", websocket.DialOptions{Subprotocols: []string{"sessionhub.v1", "bearer." + forged}})

	for reqID, want := range map[string]string{
		"pub-valid": "status=403 ", "ws-header": "status=101 ", "ws-subprotocol": "status=101 ",
	} {
		line := s.waitLogLine("request_id=" + reqID)
		require.NotEmpty(t, line, s.logs.String())
		require.Contains(t, line, want)
		require.True(t, strings.HasSuffix(line, " session_id="+sid), "%s: %s", reqID, line)
	}
	for _, reqID := range []string{"pub-forged", "pub-garbage", "pub-scheme", "ws-forged"} {
		line := s.waitLogLine("request_id=" + reqID)
		require.NotEmpty(t, line, s.logs.String())
		require.Contains(t, line, "status=401 ")
		require.NotContains(t, line, "session_id=", "%s: %s", reqID, line)
	}
	logs := s.logs.String()
	require.NotContains(t, logs, other, "the forged sid")
	require.NotContains(t, logs, parts[2], "a token's signature")
}
