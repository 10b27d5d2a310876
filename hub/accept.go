package hub

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// Subprotocol is the one protocol the hub speaks and selects.
const Subprotocol = "sessionhub.v1"

// Handshake tuning, each with why.
const (
	statusTimeout = 2 * time.Second // the one liveness read of a handshake; a store slower than this is down
	userSubWait   = 2 * time.Second // for the node's user-channel subscription before the welcome
)

// ServeWS handles GET /ws: it authenticates the handshake, upgrades, sends
// the welcome frame and returns, leaving the socket to its reader goroutine
// (so nothing of net/http's per-request state outlives the upgrade).
// Refusals are plain HTTP with a JSON error body: 401 without a valid
// credential (also for one in the query string, or a dead session), 403
// for an Origin not on the allowlist, 503 while draining, 426 for a request
// that is not a WebSocket handshake (a plain GET) and 400 for a malformed
// one, so that websocket.Accept never writes its own text/plain refusal.
func (h *Hub) ServeWS(w http.ResponseWriter, r *http.Request) {
	start := time.Now().UnixNano()
	if h.draining.Load() {
		h.refuse(w, http.StatusServiceUnavailable, "unavailable", "the node is shutting down", resultDraining)
		return
	}
	if status, msg := handshakeProblem(r); status != 0 {
		hd := w.Header()
		hd.Set("Sec-WebSocket-Version", "13")
		code := "bad_request"
		if status == http.StatusUpgradeRequired {
			hd.Set("Upgrade", "websocket")
			hd.Set("Connection", "Upgrade")
			code = "upgrade_required"
		}
		h.refuse(w, status, code, msg, resultBadRequest)
		return
	}
	if queryHasToken(r.URL) {
		h.refuse(w, http.StatusUnauthorized, "invalid_token", "tokens are not accepted in the query string", resultQueryToken)
		return
	}
	origin := r.Header.Get("Origin")
	if origin != "" && !h.originAllowed(origin) {
		h.refuse(w, http.StatusForbidden, "origin", "origin not allowed", resultOrigin)
		return
	}
	ident, ok := h.authenticate(w, r, origin != "")
	if !ok {
		return
	}

	c := &conn{h: h, id: h.nextID.Add(1), ident: ident, from: fromOf(ident), handshake: start}
	c.writeFn = c.writeLoop
	// A socket still in its handshake has had no ping to answer: the
	// heartbeat never cuts it (it is counted alive from the welcome on).
	c.lastSeen.Store(math.MaxInt64)
	hj := &hijacker{ResponseWriter: w, timeout: h.cfg.WriteTimeout}
	ws, err := websocket.Accept(hj, r, &websocket.AcceptOptions{
		Subprotocols:       []string{Subprotocol},
		InsecureSkipVerify: true, // the Origin allowlist was applied above, failing closed
		CompressionMode:    websocket.CompressionDisabled,
		OnPongReceived:     func(context.Context, []byte) { c.lastSeen.Store(time.Now().UnixNano()) },
	})
	if err != nil {
		h.m.connects.WithLabelValues(resultBadRequest).Inc()
		return
	}
	c.ws, c.sc = ws, hj.sc
	ws.SetReadLimit(maxMessage)
	h.m.connectsOK.Inc()
	h.m.connections.Inc()
	h.live.Add(1)

	// The welcome goes first, but only once the socket is fully set up: the
	// writer is held until then, so that a client that sees the welcome is
	// already subscribed to its user channel and counted in the ledger, and
	// anything queued meanwhile follows the welcome. The 101 response waits
	// with it (see hijacker), so both leave in one write. The subscription
	// and the ledger's round trip are in flight at the same time.
	c.writing = true
	c.queue = append(c.queue, h.welcome(ident))
	ready := h.reg.add(c)
	h.connectionsChanged()
	h.enforceLimit(c)
	select {
	case <-ready:
	default:
		t := time.NewTimer(userSubWait)
		select {
		case <-ready:
		case <-t.C:
			h.log.Warn("hub: user channel subscription not confirmed in time")
		}
		t.Stop()
	}
	if d, revoked := h.revokedSince(c, start); revoked {
		c.closeWith(d, 0)
	}
	if h.draining.Load() {
		c.closeWith(DisconnectGoingAway, 0)
	}
	c.lastSeen.Store(time.Now().UnixNano())
	h.writers.Add(1)
	go c.writeFn()
	go c.readLoop()
}

// handshakeProblem checks what websocket.Accept would refuse, so that the
// refusal has API.md's JSON body: 426 when the request is not an upgrade
// to WebSocket at all, 400 for a bad Sec-WebSocket-Version or -Key. It
// returns status 0 for a well-formed handshake.
func handshakeProblem(r *http.Request) (status int, msg string) {
	switch {
	case !r.ProtoAtLeast(1, 1) || !headerHasToken(r.Header, "Connection", "upgrade") ||
		!headerHasToken(r.Header, "Upgrade", "websocket"):
		return http.StatusUpgradeRequired, "this endpoint only answers a WebSocket handshake (Connection: Upgrade, Upgrade: websocket)"
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		return http.StatusBadRequest, "unsupported Sec-WebSocket-Version (only 13 is supported)"
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return http.StatusBadRequest, "exactly one Sec-WebSocket-Key is required"
	}
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0])); err != nil || len(k) != 16 {
		return http.StatusBadRequest, "Sec-WebSocket-Key must be 16 bytes in base64"
	}
	return 0, ""
}

// headerHasToken reports whether a comma-separated header lists token
// (case-insensitively), as RFC 9110 lists Connection and Upgrade values.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// welcome is the welcome text frame, encoded in place (one allocation).
func (h *Hub) welcome(id Identity) []byte {
	b := make([]byte, 4, 4+160)
	b = append(b, `{"type":"welcome","user_id":`...)
	b = appendString(b, id.UserID)
	b = append(b, `,"session_id":`...)
	b = appendString(b, id.SessionID)
	b = append(b, `,"node":`...)
	b = appendString(b, h.cfg.NodeID)
	b = append(b, `,"heartbeat_s":`...)
	b = strconv.AppendFloat(b, h.cfg.Heartbeat.Seconds(), 'f', -1, 64)
	b = append(b, '}')
	return frameInPlace(b)
}

// enforceLimit records the socket in the cluster-wide ledger and closes the
// user's oldest sockets past MaxSocketsPerUser with 4009, wherever they
// are. When Redis is unreachable the socket is let in: the limit is a
// fairness bound, not a security one.
func (h *Hub) enforceLimit(c *conn) {
	ctx, cancel := context.WithTimeout(context.Background(), ledgerTimeout)
	defer cancel()
	evict, err := h.br.AddSocket(ctx, c.ident.UserID, member(h.cfg.NodeID, c.id), h.cfg.MaxSocketsPerUser)
	if err != nil {
		h.log.Warn("hub: socket ledger unavailable; limit not enforced", "err", err)
		return
	}
	for _, m := range evict {
		node, _, _ := strings.Cut(m, "|")
		if node == h.cfg.NodeID {
			h.evictLocal(c.ident.UserID, m)
			continue
		}
		b, _ := json.Marshal(control{Evict: m, User: c.ident.UserID})
		if err := h.br.Publish(ctx, "node:"+node, b); err != nil {
			h.log.Warn("hub: eviction not sent", "node", node, "err", err)
		}
	}
}

// authenticate finds the handshake's identity: a bearer JWT (header or
// subprotocol) whose session is still alive, or else the session cookie,
// which needs an allowed Origin. It writes the refusal itself.
func (h *Hub) authenticate(w http.ResponseWriter, r *http.Request, hasOrigin bool) (Identity, bool) {
	token, bearer := bearerToken(r)
	if !bearer {
		if r.Header.Get("Cookie") == "" {
			h.refuse(w, http.StatusUnauthorized, "unauthenticated", "a bearer token or a session cookie is required", resultNoToken)
			return Identity{}, false
		}
		if !hasOrigin {
			h.refuse(w, http.StatusForbidden, "origin", "a cookie-authenticated socket needs an allowed Origin", resultOrigin)
			return Identity{}, false
		}
		id, err := h.deps.Sessions.FromCookie(w, r)
		if err != nil || id.UserID == "" || id.SessionID == "" {
			h.refuse(w, http.StatusUnauthorized, "unauthenticated", "no live session", resultInvalidToken)
			return Identity{}, false
		}
		return id, true
	}
	id, err := h.deps.Verifier.Verify(r.Context(), token)
	if err != nil || id.UserID == "" || id.SessionID == "" {
		h.refuse(w, http.StatusUnauthorized, "invalid_token", "invalid or expired token", resultInvalidToken)
		return Identity{}, false
	}
	switch h.alive(r.Context(), id.SessionID) {
	case errUnavailable:
		h.refuse(w, http.StatusServiceUnavailable, "unavailable", "session store unavailable", resultUnavailable)
		return Identity{}, false
	case errDead:
		h.refuse(w, http.StatusUnauthorized, "invalid_token", "the session has ended", resultDeadSession)
		return Identity{}, false
	}
	return id, true
}

// Outcomes of alive.
const (
	isAlive = iota
	errDead
	errUnavailable
)

// alive is the one liveness read of a handshake or publish, so that a
// token minted before a revocation opens nothing. Reads of concurrent
// handshakes share a round trip (see liveness).
func (h *Hub) alive(ctx context.Context, sessionID string) int {
	return h.sessions.check(ctx, sessionID)
}

func (h *Hub) refuse(w http.ResponseWriter, status int, code, msg, result string) {
	h.m.connects.WithLabelValues(result).Inc()
	writeError(w, status, code, msg)
}

// writeError answers with API.md's error body. A 503 (draining, or a store
// that did not answer) is short-lived and says so with Retry-After, as the
// auth routes' 503s do.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	if status == http.StatusServiceUnavailable {
		hd.Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	b := appendString([]byte(`{"error":`), code)
	b = append(b, `,"message":`...)
	b = appendString(b, msg)
	_, _ = w.Write(append(b, '}', '\n'))
}

// bearerToken finds a JWT in "Authorization: Bearer" or, for browsers, in a
// "bearer.<jwt>" subprotocol offer. bearer is true when either is present,
// even empty (which then fails verification).
func bearerToken(r *http.Request) (token string, bearer bool) {
	if a := r.Header.Get("Authorization"); a != "" {
		scheme, tok, _ := strings.Cut(a, " ")
		if strings.EqualFold(scheme, "bearer") {
			return strings.TrimSpace(tok), true
		}
		return "", true // another scheme on a socket: refused as invalid
	}
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if tok, ok := strings.CutPrefix(strings.TrimSpace(p), "bearer."); ok {
				return tok, true
			}
		}
	}
	return "", false
}

// queryHasToken reports a credential in the query string: a parameter
// named like one, or a value shaped like a JWT or a session token.
func queryHasToken(u *url.URL) bool {
	if u.RawQuery == "" {
		return false
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return true // unparseable: refuse rather than guess
	}
	for k, vs := range q {
		switch strings.ToLower(k) {
		case "token", "access_token", "jwt", "bearer", "auth", "authorization", "session", "sid", "key":
			return true
		}
		for _, v := range vs {
			if strings.HasPrefix(v, "eyJ") || strings.Contains(v, "shs_") || strings.Contains(v, "shr_") ||
				strings.Count(v, ".") == 2 && len(v) > 40 {
				return true
			}
		}
	}
	return false
}

func (h *Hub) originAllowed(origin string) bool {
	o, ok := normalizeOrigin(origin)
	if !ok {
		return false
	}
	for _, a := range h.cfg.AllowedOrigins {
		if a == o {
			return true
		}
	}
	return false
}

// fromOf is the "from" of messages an identity publishes.
func fromOf(id Identity) string {
	if id.Service != "" {
		return "service:" + id.Service
	}
	return id.UserID
}
