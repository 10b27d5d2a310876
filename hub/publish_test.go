package hub

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// publishReq posts body to /api/publish with the given Content-Type ("" for
// none) and returns the status and the error code of the body.
func publishReq(t *testing.T, n *node, token, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, n.srv.URL+"/api/publish", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error
}

// TestPublishBodyIsStrictJSON: POST /api/publish reads its body as every
// other JSON route does (README): a body that is not application/json is
// 415, unknown fields or trailing data are 400, never published.
func TestPublishBodyIsStrictJSON(t *testing.T) {
	t.Parallel()
	n, auth := redisNode(t, nil)
	sub := dial(t, n, auth.token("u1", "S1", "sub:room:*"))
	require.Equal(t, "ack", sub.request(map[string]any{"type": "subscribe", "channel": "room:1", "id": 1})["type"])
	worker := auth.serviceToken("w", "W1", "pusher", "pub:room:*")

	for _, tc := range []struct {
		contentType, body string
		status            int
		code              string
	}{
		{"", `{"channel":"room:1","data":1}`, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"text/plain", `{"channel":"room:1","data":1}`, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"application/json", `{"channel":"room:1","data":1,"extra":2}`, http.StatusBadRequest, "bad_request"},
		{"application/json", `{"channel":"room:1","data":1} {}`, http.StatusBadRequest, "bad_request"},
		{"application/json", `{"channel":"room:1","data":1} x`, http.StatusBadRequest, "bad_request"},
		{"application/json", `{"channel":1,"data":1}`, http.StatusBadRequest, "bad_request"},
		{"application/json", `[]`, http.StatusBadRequest, "bad_request"},
	} {
		status, code := publishReq(t, n, worker, tc.contentType, tc.body)
		require.Equal(t, tc.status, status, "%q %s", tc.contentType, tc.body)
		require.Equal(t, tc.code, code, "%q %s", tc.contentType, tc.body)
	}
	// Only the well-formed request is delivered.
	status, _ := publishReq(t, n, worker, "application/json; charset=utf-8", `{"channel":"room:1","data":"ok"}`)
	require.Equal(t, http.StatusAccepted, status)
	m := sub.read()
	require.Equal(t, map[string]any{"type": "message", "channel": "room:1", "data": "ok", "from": "service:pusher"}, m)
}

// TestPublishDeadSessionIs401First: a token whose session has ended is 401
// whatever else is wrong with the request (no grant, a bad body), as a
// dead session is 401 before any other check everywhere else.
func TestPublishDeadSessionIs401First(t *testing.T) {
	t.Parallel()
	n, auth := redisNode(t, nil)
	tok := auth.token("u1", "S1", "pub:room:*")
	status, code := publishReq(t, n, tok, "application/json", `{"channel":"secret:1","data":1}`)
	require.Equal(t, http.StatusForbidden, status)
	require.Equal(t, "forbidden", code)

	auth.set("S1", SessionRevoked)
	for _, body := range []string{`{"channel":"room:1","data":1}`, `{"channel":"secret:1","data":1}`, `{"channel":`} {
		status, code := publishReq(t, n, tok, "application/json", body)
		require.Equal(t, http.StatusUnauthorized, status, body)
		require.Equal(t, "invalid_token", code, body)
	}
}
