package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/auth"
	"github.com/sessionhub/sessionhub/internal/testenv"
)

// login signs a user up and returns the session cookie and CSRF token.
func (s *server) signup(email string) (*http.Cookie, string) {
	s.t.Helper()
	resp, err := s.client.Post(s.url+"/auth/signup", "application/json",
		strings.NewReader(`{"email":"`+email+`","password":"correct horse battery"}`))
	require.NoError(s.t, err)
	defer resp.Body.Close()
	require.Equal(s.t, http.StatusCreated, resp.StatusCode)
	var body struct {
		CSRF string `json:"csrf_token"`
	}
	require.NoError(s.t, json.NewDecoder(resp.Body).Decode(&body))
	for _, c := range resp.Cookies() {
		if c.Name == auth.CookieName {
			return c, body.CSRF
		}
	}
	s.t.Fatal("no session cookie")
	return nil, ""
}

// post sends a cookie-authenticated mutation.
func (s *server) post(path string, cookie *http.Cookie, csrf string) *http.Response {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+path, nil)
	req.AddCookie(cookie)
	req.Header.Set("X-CSRF-Token", csrf)
	resp, err := s.client.Do(req)
	require.NoError(s.t, err)
	return resp
}

// socket opens a WebSocket with a fresh JWT of the cookie's session and
// reads the welcome frame.
func (s *server) socket(cookie *http.Cookie, csrf string) *websocket.Conn {
	s.t.Helper()
	resp := s.post("/session/token", cookie, csrf)
	defer resp.Body.Close()
	require.Equal(s.t, http.StatusOK, resp.StatusCode)
	var tok struct {
		Token string `json:"token"`
	}
	require.NoError(s.t, json.NewDecoder(resp.Body).Decode(&tok))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, hresp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/ws", &websocket.DialOptions{
		HTTPClient: s.client,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + tok.Token}},
	})
	require.NoError(s.t, err)
	if hresp.Body != nil {
		hresp.Body.Close()
	}
	_, msg, err := ws.Read(ctx)
	require.NoError(s.t, err)
	require.Contains(s.t, string(msg), `"welcome"`)
	return ws
}

// closeCode reads until the server closes ws and returns the close code.
func closeCode(t *testing.T, ws *websocket.Conn) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

// TestServeSockets checks the hub wiring in both modes: a socket opened
// with a /session/token JWT, closed with 4001 when its session logs out
// (in memory the revocation reaches the hub in process; on Redis through
// pub/sub), and with 1001 when the node shuts down.
func TestServeSockets(t *testing.T) {
	t.Parallel()
	modes := map[string]func(t *testing.T) map[string]string{
		"memory": func(t *testing.T) map[string]string { return nil },
		"redis+postgres": func(t *testing.T) map[string]string {
			_, prefix := testenv.Redis(t)
			return map[string]string{
				"REDIS_URL": testenv.RedisURL(), "DATABASE_URL": testenv.SchemaURL(t), "SESSIONHUB_REDIS_PREFIX": prefix,
			}
		},
	}
	for name, env := range modes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := env(t)
			if e == nil {
				e = map[string]string{}
			}
			e["SESSIONHUB_DRAIN"] = "1s"
			s := startServer(t, e)
			cookie, csrf := s.signup("sock@example.com")

			ws := s.socket(cookie, csrf)
			defer ws.CloseNow()
			resp := s.post("/auth/logout", cookie, csrf)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			require.Equal(t, http.StatusNoContent, resp.StatusCode)
			require.Equal(t, websocket.StatusCode(4001), closeCode(t, ws))

			cookie, csrf = s.signup("sock2@example.com")
			ws2 := s.socket(cookie, csrf)
			defer ws2.CloseNow()
			done := make(chan websocket.StatusCode, 1)
			go func() { done <- closeCode(t, ws2) }()
			require.NoError(t, s.shutdown())
			require.Equal(t, websocket.StatusGoingAway, <-done)
		})
	}
}
