package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

// confHubChecks are API.md's "Hub (WebSocket)" section.
func confHubChecks() []confCheck {
	return []confCheck{
		{name: "ws-handshake", fn: confWSHandshake},
		{name: "ws-refusals", fn: confWSRefusals},
		{name: "ws-protocol", fn: confWSProtocol},
		{name: "ws-limits", fn: confWSLimits},
		{name: "ws-channel-cap", fn: confWSChannelCap},
		{name: "ws-max-sockets", fn: confWSMaxSockets},
		{name: "ws-revocation", fn: confWSRevocation},
		{name: "api-publish", fn: confAPIPublish},
	}
}

func confWSHandshake(t *testing.T, c *confClient) {
	a := c.user("hs")
	jwt := c.token(a)

	// Authorization: Bearer, no subprotocol.
	_, w := c.ws(jwt)
	requireKeys(t, w, "type", "user_id", "session_id", "node", "heartbeat_s")
	require.Equal(t, a.userID, w["user_id"])
	require.Equal(t, a.sid, w["session_id"])
	require.NotEmpty(t, w["node"])
	require.EqualValues(t, 25, w["heartbeat_s"])

	// Bearer and sessionhub.v1 offered: selected.
	ws, r, err := c.dial("", http.Header{"Authorization": {"Bearer " + jwt}}, "sessionhub.v1")
	require.NoError(t, err, "%v", r)
	require.Equal(t, "sessionhub.v1", ws.Subprotocol())
	require.Equal(t, "welcome", c.frame(ws)["type"])

	// Browser style: the token as a "bearer.<jwt>" subprotocol; the server
	// selects sessionhub.v1 and never echoes the token.
	ws, r, err = c.dial("", nil, "sessionhub.v1", "bearer."+jwt)
	require.NoError(t, err, "%v", r)
	require.Equal(t, "sessionhub.v1", ws.Subprotocol())
	require.Equal(t, []string{"sessionhub.v1"}, r.hdr.Values("Sec-WebSocket-Protocol"))
	for k, vs := range r.hdr {
		for _, v := range vs {
			require.NotContains(t, v, jwt, "header %s echoes the token", k)
		}
	}
	require.Equal(t, a.sid, c.frame(ws)["session_id"])

	// An unrelated query parameter is not a token.
	ws, r, err = c.dial("v=1", http.Header{"Authorization": {"Bearer " + jwt}, "Origin": {confOrigin}})
	require.NoError(t, err, "%v", r)
	require.Equal(t, "welcome", c.frame(ws)["type"])

	// Cookie only, from an allowed origin.
	ws, r, err = c.dial("", http.Header{"Cookie": {a.cookie.String()}, "Origin": {confOrigin}}, "sessionhub.v1")
	require.NoError(t, err, "%v", r)
	w = c.frame(ws)
	require.Equal(t, "welcome", w["type"])
	require.Equal(t, a.sid, w["session_id"])
}

func confWSRefusals(t *testing.T, c *confClient) {
	a := c.user("refuse")
	jwt := c.token(a)
	refused := func(status int, query string, hdr http.Header, protos ...string) {
		t.Helper()
		ws, r, err := c.dial(query, hdr, protos...)
		require.Error(t, err, "the handshake must be refused")
		require.Nil(t, ws)
		require.NotNil(t, r)
		c.requireError(r, status, "")
	}
	cookie := a.cookie.String()
	// Cookie only: the Origin check is strict.
	refused(http.StatusForbidden, "", http.Header{"Cookie": {cookie}})
	refused(http.StatusForbidden, "", http.Header{"Cookie": {cookie}, "Origin": {confEvilOrigin}})
	refused(http.StatusForbidden, "", http.Header{"Cookie": {cookie}, "Origin": {"null"}})
	refused(http.StatusForbidden, "", http.Header{"Cookie": {cookie}, "Origin": {confOrigin + ".evil.example"}})
	// Tokens in the query string are refused.
	refused(http.StatusUnauthorized, "token="+jwt, nil)
	refused(http.StatusUnauthorized, "access_token="+jwt, nil)
	refused(http.StatusUnauthorized, "token="+jwt, http.Header{"Authorization": {"Bearer " + jwt}})
	// Missing, invalid or tampered tokens.
	refused(http.StatusUnauthorized, "", nil)
	refused(http.StatusUnauthorized, "", http.Header{"Authorization": {"Bearer garbage"}})
	refused(http.StatusUnauthorized, "", http.Header{"Authorization": {"Bearer " + jwt[:len(jwt)-4] + "AAAA"}})
	refused(http.StatusUnauthorized, "", nil, "sessionhub.v1", "bearer.garbage")
	refused(http.StatusUnauthorized, "", http.Header{"Cookie": {a.cookie.Name + "=AAAAAAAAAAAAAAAAAAAAAA.shs_" + strings.Repeat("A", 43)}, "Origin": {confOrigin}})
	// The allowlist applies to every handshake that names an Origin.
	refused(http.StatusForbidden, "", http.Header{"Authorization": {"Bearer " + jwt}, "Origin": {confEvilOrigin}})
	// A session cookie is not a bearer token.
	refused(http.StatusUnauthorized, "", http.Header{"Authorization": {"Bearer " + a.cookie.Value}})

	// A token minted before the revocation opens nothing.
	require.Equal(t, http.StatusNoContent, c.do("POST", "/auth/logout", nil, as(a)).code)
	refused(http.StatusUnauthorized, "", http.Header{"Authorization": {"Bearer " + jwt}})
	refused(http.StatusUnauthorized, "", nil, "sessionhub.v1", "bearer."+jwt)
	refused(http.StatusUnauthorized, "", http.Header{"Cookie": {cookie}, "Origin": {confOrigin}})

	// A plain GET (no upgrade) with a valid token is refused with API.md's
	// error body too.
	r := c.do("GET", "/ws", nil, withBearer(c.token(c.user("plain"))))
	require.GreaterOrEqual(t, r.code, 400, "%s", r)
	c.requireError(r, r.code, "")
}

func confWSProtocol(t *testing.T, c *confClient) {
	a, b := c.user("proto-a"), c.user("proto-b")
	wsA, _ := c.ws(c.token(a))
	wsB, _ := c.ws(c.token(b))
	room := fmt.Sprintf("room:p%d", c.h.next())
	isID := func(id any) func(map[string]any) bool {
		return func(m map[string]any) bool { return m["type"] != "message" && fmt.Sprint(m["id"]) == fmt.Sprint(id) }
	}
	ack := func(ws *websocket.Conn, id any) {
		t.Helper()
		m := c.await(ws, fmt.Sprintf("ack %v", id), isID(id))
		require.Equal(t, map[string]any{"type": "ack", "id": id}, m)
	}
	errFrame := func(ws *websocket.Conn, id any, code string) {
		t.Helper()
		m := c.await(ws, fmt.Sprintf("error %v", id), isID(id))
		require.Equal(t, "error", m["type"], "%v", m)
		require.Equal(t, code, m["error"], "%v", m)
		requireKeys(t, m, "type", "id", "error", "message")
	}

	c.send(wsB, map[string]any{"type": "subscribe", "channel": room, "id": "s1"})
	ack(wsB, "s1")
	c.send(wsA, map[string]any{"type": "publish", "channel": room, "data": map[string]any{"n": 1}, "id": 7})
	ack(wsA, float64(7))
	m := c.await(wsB, "message", func(m map[string]any) bool { return m["type"] == "message" })
	require.Equal(t, map[string]any{"type": "message", "channel": room, "data": map[string]any{"n": float64(1)}, "from": a.userID}, m)

	// Every socket is on its own user channel already; subscribing to it is harmless.
	c.send(wsA, map[string]any{"type": "subscribe", "channel": "user:" + a.userID, "id": "own"})
	ack(wsA, "own")
	// Other channels need a grant; user: channels too, for publishing.
	c.send(wsA, map[string]any{"type": "subscribe", "channel": "user:" + b.userID, "id": "f1"})
	errFrame(wsA, "f1", "forbidden")
	c.send(wsA, map[string]any{"type": "subscribe", "channel": "secret:x", "id": "f2"})
	errFrame(wsA, "f2", "forbidden")
	c.send(wsA, map[string]any{"type": "publish", "channel": "user:" + b.userID, "data": "hi", "id": "f3"})
	errFrame(wsA, "f3", "forbidden")
	c.send(wsA, map[string]any{"type": "publish", "channel": "user:" + a.userID, "data": "hi", "id": "f4"})
	errFrame(wsA, "f4", "forbidden")
	c.send(wsA, map[string]any{"type": "unsubscribe", "channel": "room:never", "id": "u1"})
	errFrame(wsA, "u1", "not_subscribed")
	c.send(wsB, map[string]any{"type": "unsubscribe", "channel": room, "id": "u2"})
	ack(wsB, "u2")
	c.send(wsA, map[string]any{"type": "frobnicate", "id": "x1"})
	errFrame(wsA, "x1", "unknown_type")
	c.send(wsA, map[string]any{"type": "subscribe", "id": "x2"})
	errFrame(wsA, "x2", "bad_request")
	c.send(wsA, map[string]any{"type": "subscribe", "channel": 5, "id": "x3"})
	errFrame(wsA, "x3", "bad_request")
	c.send(wsA, map[string]any{"type": "publish", "channel": room, "id": "x4"})
	errFrame(wsA, "x4", "bad_request")
	c.sendRaw(wsA, websocket.MessageText, []byte(`{"type":`))
	m = c.await(wsA, "bad JSON error", func(m map[string]any) bool { return m["type"] == "error" })
	require.Equal(t, "bad_request", m["error"])
	// Still open after all of that.
	c.send(wsA, map[string]any{"type": "subscribe", "channel": room, "id": "last"})
	ack(wsA, "last")
}

func confWSLimits(t *testing.T, c *confClient) {
	a := c.user("limits")
	jwt := c.token(a)
	room := fmt.Sprintf("room:l%d", c.h.next())
	// A message of exactly 65,536 bytes is allowed.
	frame := func(n int) []byte {
		head := `{"type":"publish","channel":"` + room + `","id":"big","data":"`
		return []byte(head + strings.Repeat("d", n-len(head)-2) + `"}`)
	}
	ws, _ := c.ws(jwt)
	require.Len(t, frame(65536), 65536)
	c.sendRaw(ws, websocket.MessageText, frame(65536))
	m := c.await(ws, "reply to 64 KiB", func(m map[string]any) bool { return m["id"] == "big" })
	require.Equal(t, "ack", m["type"], "%v", m)
	// One byte more: 1009.
	c.sendRaw(ws, websocket.MessageText, frame(65537))
	code, _ := c.closed(ws)
	require.Equal(t, websocket.StatusMessageTooBig, code)

	// Binary: 1003.
	ws, _ = c.ws(jwt)
	c.sendRaw(ws, websocket.MessageBinary, []byte(`{"type":"subscribe","channel":"room:x","id":1}`))
	code, _ = c.closed(ws)
	require.Equal(t, websocket.StatusUnsupportedData, code)

	// Invalid UTF-8: 1007.
	ws, _ = c.ws(jwt)
	c.sendRaw(ws, websocket.MessageText, []byte("{\"type\":\"subscribe\",\"channel\":\"room:\xff\",\"id\":1}"))
	code, _ = c.closed(ws)
	require.Equal(t, websocket.StatusInvalidFramePayloadData, code)

	// Over 100 messages per second: rate_limited errors (250 back to back
	// are over a bucket of 100 refilled at 100/s unless sending them takes
	// 1.5 s).
	ws, _ = c.ws(jwt)
	for i := range 250 {
		c.send(ws, map[string]any{"type": "subscribe", "channel": "user:" + a.userID, "id": i})
	}
	c.await(ws, "rate_limited", func(m map[string]any) bool { return m["type"] == "error" && m["error"] == "rate_limited" })
	// A sustained flood: 1008.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		msg := []byte(`{"type":"subscribe","channel":"user:` + a.userID + `","id":1}`)
		for range 2000 {
			if ws.Write(ctx, websocket.MessageText, msg) != nil {
				return
			}
		}
	}()
	code, _ = c.closed(ws)
	require.Equal(t, websocket.StatusPolicyViolation, code)
}

// SESSIONHUB_MAX_SOCKETS_PER_USER (32): past it the oldest socket of the
// user is closed with 4009.
func confWSMaxSockets(t *testing.T, c *confClient) {
	a := c.user("many")
	jwt := c.token(a)
	var socks []*websocket.Conn
	for range 32 {
		ws, _ := c.ws(jwt)
		socks = append(socks, ws)
	}
	extra, _ := c.ws(jwt)
	code, reason := c.closed(socks[0])
	require.EqualValues(t, 4009, code)
	require.Equal(t, "too many connections", reason)
	// The others, the newest included, stay open.
	for _, ws := range []*websocket.Conn{socks[1], extra} {
		c.send(ws, map[string]any{"type": "subscribe", "channel": "room:ok", "id": 1})
		require.Equal(t, "ack", c.await(ws, "ack", func(m map[string]any) bool { return m["id"] == float64(1) })["type"])
	}
}

func confWSChannelCap(t *testing.T, c *confClient) {
	a := c.user("cap")
	ws, _ := c.ws(c.token(a))
	for i := range 129 {
		if i > 0 && i%80 == 0 {
			time.Sleep(1100 * time.Millisecond) // stay under 100 messages per second
		}
		c.send(ws, map[string]any{"type": "subscribe", "channel": fmt.Sprintf("room:cap%d", i), "id": i})
		m := c.await(ws, "reply", func(m map[string]any) bool { return m["id"] == float64(i) })
		if i < 128 {
			require.Equal(t, "ack", m["type"], "subscription %d: %v", i, m)
			continue
		}
		require.Equal(t, "error", m["type"], "the 129th channel: %v", m)
		require.Equal(t, "too_many_channels", m["error"])
	}
}

func confWSRevocation(t *testing.T, c *confClient) {
	a := c.user("rev")
	b := c.login(a.email, a.password)
	// Revoking one session closes its sockets (bearer and cookie) with 4001.
	ws1, _ := c.ws(c.token(b))
	ws2, r, err := c.dial("", http.Header{"Cookie": {b.cookie.String()}, "Origin": {confOrigin}})
	require.NoError(t, err, "%v", r)
	require.Equal(t, "welcome", c.frame(ws2)["type"])
	wsA, _ := c.ws(c.token(a))
	require.Equal(t, http.StatusNoContent, c.do("DELETE", "/sessions/"+b.sid, nil, as(a)).code)
	for _, ws := range []*websocket.Conn{ws1, ws2} {
		code, reason := c.closed(ws)
		require.EqualValues(t, 4001, code)
		require.Equal(t, "session revoked", reason)
	}
	// The caller's own socket stays.
	c.send(wsA, map[string]any{"type": "subscribe", "channel": "room:still", "id": 1})
	require.Equal(t, "ack", c.await(wsA, "ack", func(m map[string]any) bool { return m["id"] == float64(1) })["type"])
	// Global logout: 4002.
	require.Equal(t, http.StatusNoContent, c.do("POST", "/auth/logout-all", nil, as(a)).code)
	code, reason := c.closed(wsA)
	require.EqualValues(t, 4002, code)
	require.Equal(t, "logged out everywhere", reason)
}

func confAPIPublish(t *testing.T, c *confClient) {
	a, b := c.user("pub-a"), c.user("pub-b")
	jwtA := c.token(a)
	wsB, _ := c.ws(c.token(b))
	room := fmt.Sprintf("room:api%d", c.h.next())
	c.send(wsB, map[string]any{"type": "subscribe", "channel": room, "id": 1})
	c.await(wsB, "ack", func(m map[string]any) bool { return m["type"] == "ack" })

	r := c.do("POST", "/api/publish", map[string]any{"channel": room, "data": map[string]any{"hello": "world"}}, withBearer(jwtA))
	require.Equal(t, http.StatusAccepted, r.code, "%s", r)
	m := c.await(wsB, "message", func(m map[string]any) bool { return m["type"] == "message" })
	require.Equal(t, map[string]any{"type": "message", "channel": room, "data": map[string]any{"hello": "world"}, "from": a.userID}, m)

	// No grant: 403 forbidden.
	c.requireError(c.do("POST", "/api/publish", map[string]any{"channel": "secret:x", "data": 1}, withBearer(jwtA)), http.StatusForbidden, "forbidden")
	c.requireError(c.do("POST", "/api/publish", map[string]any{"channel": "user:" + b.userID, "data": 1}, withBearer(jwtA)), http.StatusForbidden, "forbidden")
	// No or bad token: 401; a session cookie is not a bearer JWT.
	c.requireError(c.do("POST", "/api/publish", map[string]any{"channel": room, "data": 1}), http.StatusUnauthorized, "")
	c.requireError(c.do("POST", "/api/publish", map[string]any{"channel": room, "data": 1}, withBearer("garbage")), http.StatusUnauthorized, "")
	c.requireError(c.do("POST", "/api/publish", map[string]any{"channel": room, "data": 1}, as(a)), http.StatusUnauthorized, "")
	c.requireError(c.do("POST", "/api/publish", `{"channel":`, withBearer(jwtA)), http.StatusBadRequest, "")
	// A revoked session's token publishes nothing.
	require.Equal(t, http.StatusNoContent, c.do("POST", "/auth/logout", nil, as(a)).code)
	c.requireError(c.do("POST", "/api/publish", map[string]any{"channel": room, "data": 1}, withBearer(jwtA)), http.StatusUnauthorized, "")
}
