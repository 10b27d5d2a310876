package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/auth"
)

// TestCookieSocketResendsCookie: a cookie-only handshake is a
// cookie-authenticated request, and it slides the session, so its 101
// re-sends the cookie with a fresh Max-Age (API.md, Cookies) like every
// other such request; a bearer handshake sets no cookie.
func TestCookieSocketResendsCookie(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	cookie, csrf := s.signup("cookie-socket@example.com")
	url := "ws" + strings.TrimPrefix(s.url, "http") + "/ws"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient: s.client,
		HTTPHeader: http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}, "Origin": {"http://localhost:8080"}},
	})
	require.NoError(t, err)
	defer ws.CloseNow()
	var resent *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == auth.CookieName {
			resent = c
		}
	}
	require.NotNil(t, resent, "the 101 of a cookie handshake re-sends the session cookie: %v", resp.Header)
	require.Equal(t, cookie.Value, resent.Value)
	require.Equal(t, cookie.MaxAge, resent.MaxAge, "a fresh Max-Age: the whole idle TTL")
	require.True(t, resent.Secure)
	require.True(t, resent.HttpOnly)
	require.Equal(t, "/", resent.Path)
	require.Empty(t, resent.Domain)
	_, msg, err := ws.Read(ctx)
	require.NoError(t, err)
	require.Contains(t, string(msg), `"welcome"`)

	// A bearer handshake has no cookie to re-send.
	tok := s.post("/session/token", cookie, csrf)
	defer tok.Body.Close()
	require.Equal(t, http.StatusOK, tok.StatusCode)
	var body struct {
		Token string `json:"token"`
	}
	require.NoError(t, json.NewDecoder(tok.Body).Decode(&body))
	jwt := body.Token
	ws2, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient: s.client,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + jwt}},
	})
	require.NoError(t, err)
	defer ws2.CloseNow()
	require.Empty(t, resp.Header.Values("Set-Cookie"))
}
