package web_test

// Tests of sessionhub.js itself, in Chromium, against a scripted fake hub:
// token exchange with CSRF, the bearer subprotocol, acks and errors by id,
// reconnect with a fresh token on 1001/4008, re-subscription, and the
// terminal codes that must stop it. The real hub is exercised by
// browser_test.go; this one pins down the client's contract on its own.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/web"
)

// fakeHub speaks just enough of the hub protocol, and lets the test close
// the current socket with any code or refuse tokens.
type fakeHub struct {
	mu         sync.Mutex
	tokens     int      // tokens minted
	csrfSeen   []string // X-CSRF-Token of each token request
	protocols  []string // Sec-WebSocket-Protocol of each handshake
	subscribes []string // "conn#:channel" for every subscribe frame
	conns      int
	current    *websocket.Conn
	refuse     bool // answer 401 to token requests
}

func (f *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/session":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"csrf_token":"csrf-1","user":{"id":"u1"},"session":{"id":"s1"}}`)
	case "/session/token":
		f.mu.Lock()
		f.csrfSeen = append(f.csrfSeen, r.Header.Get("X-CSRF-Token"))
		refuse := f.refuse
		if !refuse {
			f.tokens++
		}
		n := f.tokens
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if refuse {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"unauthenticated","message":"no session"}`)
			return
		}
		fmt.Fprintf(w, `{"token":"tok%d","token_type":"Bearer","expires_in":300}`, n)
	case "/ws":
		f.serveWS(w, r)
	case "/blank":
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>client test</title>`)
	default:
		// /sessionhub.js and everything else: the real handler.
		web.Handler(web.Config{}).ServeHTTP(w, r)
	}
}

func (f *fakeHub) serveWS(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"sessionhub.v1"}})
	if err != nil {
		return
	}
	f.mu.Lock()
	f.conns++
	n := f.conns
	f.protocols = append(f.protocols, r.Header.Get("Sec-WebSocket-Protocol"))
	f.current = c
	f.mu.Unlock()
	ctx := r.Context()
	send := func(v any) {
		b, _ := json.Marshal(v)
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = c.Write(wctx, websocket.MessageText, b)
	}
	send(map[string]any{"type": "welcome", "user_id": "u1", "session_id": "s1", "node": fmt.Sprintf("node-%d", n), "heartbeat_s": 25})
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		var m struct {
			Type    string          `json:"type"`
			ID      string          `json:"id"`
			Channel string          `json:"channel"`
			Data    json.RawMessage `json:"data"`
		}
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		switch {
		case strings.HasPrefix(m.Channel, "secret:"):
			send(map[string]any{"type": "error", "id": m.ID, "error": "forbidden", "message": "no grant"})
		case m.Type == "subscribe":
			f.mu.Lock()
			f.subscribes = append(f.subscribes, fmt.Sprintf("%d:%s", n, m.Channel))
			f.mu.Unlock()
			send(map[string]any{"type": "ack", "id": m.ID})
		case m.Type == "publish":
			send(map[string]any{"type": "ack", "id": m.ID})
			send(map[string]any{"type": "message", "channel": m.Channel, "data": m.Data, "from": "u1"})
		case m.Type == "silent":
			// never answered: the client's timeout must fire
		default:
			send(map[string]any{"type": "ack", "id": m.ID})
		}
	}
}

// closeCurrent closes the live socket with code.
func (f *fakeHub) closeCurrent(code websocket.StatusCode, reason string) {
	f.mu.Lock()
	c := f.current
	f.mu.Unlock()
	_ = c.Close(code, reason)
}

func (f *fakeHub) snapshot() (tokens, conns int, csrf, protos, subs []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokens, f.conns, append([]string(nil), f.csrfSeen...), append([]string(nil), f.protocols...), append([]string(nil), f.subscribes...)
}

// setupClient opens a page on the fake hub with a SessionHub in window.hub
// and every event it emits recorded in window.events.
func setupClient(t *testing.T) (*fakeHub, *tab) {
	t.Helper()
	b := newBrowser(t)
	f := &fakeHub{}
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	p := b.tab("client", false)
	p.do(chromedp.Navigate(ts.URL + "/blank"))
	ok := run(p, chromedp.Evaluate[bool](`(async () => {
		const m = await import("/sessionhub.js");
		window.m = m;
		window.events = [];
		const hub = new m.SessionHub({ backoffBase: 40, backoffCap: 200, requestTimeout: 800 });
		window.hub = hub;
		for (const type of ["state", "welcome", "message"]) {
			hub.addEventListener(type, (e) => events.push({ type, ...e.detail }));
		}
		await hub.connect();
		return true;
	})()`, chromedp.EvalAwaitPromise))
	require.True(t, ok)
	return f, p
}

func TestClientConnectsWithTokenAndCSRF(t *testing.T) {
	t.Parallel()
	f, p := setupClient(t)
	tokens, conns, csrf, protos, _ := f.snapshot()
	require.Equal(t, 1, tokens)
	require.Equal(t, 1, conns)
	require.Equal(t, []string{"csrf-1"}, csrf, "the CSRF token from GET /session goes with the token request")
	require.Equal(t, []string{"sessionhub.v1, bearer.tok1"}, protos)
	require.Equal(t, "node-1", run(p, chromedp.Evaluate[string](`hub.welcome.node`)))
	require.Equal(t, "open", run(p, chromedp.Evaluate[string](`hub.state`)))

	// Acks resolve, errors reject with the hub's code, by id.
	got := run(p, chromedp.Evaluate[string](`(async () => {
		await hub.subscribe("room:a");
		await hub.publish("room:a", { n: 1 });
		await new Promise((r) => setTimeout(r, 100));
		const msg = events.find((e) => e.type === "message");
		let err = "";
		try { await hub.subscribe("secret:x"); } catch (e) { err = e.code; }
		let timeout = "";
		try { await hub._request({ type: "silent" }); } catch (e) { timeout = e.code; }
		return [msg.channel, JSON.stringify(msg.data), msg.from, err, hub.channels.join(","), timeout].join("|");
	})()`, chromedp.EvalAwaitPromise))
	require.Equal(t, `room:a|{"n":1}|u1|forbidden|room:a|timeout`, got)
}

func TestClientReconnectsWithFreshTokenAndResubscribes(t *testing.T) {
	t.Parallel()
	f, p := setupClient(t)
	run(p, chromedp.Evaluate[bool](`hub.subscribe("room:a").then(() => true)`, chromedp.EvalAwaitPromise))

	for i, code := range []websocket.StatusCode{websocket.StatusGoingAway, 4008} {
		f.closeCurrent(code, "bye")
		want := fmt.Sprintf("node-%d", i+2)
		p.until(fmt.Sprintf(`hub.state === "open" && hub.welcome.node === %q`, want))
		closed := run(p, chromedp.Evaluate[string](fmt.Sprintf(
			`JSON.stringify(events.filter(e => e.type === "state" && e.state === "closed").map(e => [e.code, e.terminal, typeof e.retryIn])[%d])`, i)))
		require.Equal(t, fmt.Sprintf(`[%d,false,"number"]`, code), closed)
	}
	tokens, conns, _, protos, subs := f.snapshot()
	require.Equal(t, 3, tokens, "a fresh token for every connection")
	require.Equal(t, 3, conns)
	require.Equal(t, "sessionhub.v1, bearer.tok3", protos[2])
	require.Eventually(t, func() bool {
		_, _, _, _, subs = f.snapshot()
		return len(subs) == 3
	}, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, []string{"1:room:a", "2:room:a", "3:room:a"}, subs, "re-subscribed after each reconnect")
}

func TestClientStopsOnTerminalCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code websocket.StatusCode
		text string
	}{
		{4001, "Signed out on another device"},
		{4002, "Logged out everywhere"},
		{4003, "Session expired"},
		{4009, "Too many connections"},
		{websocket.StatusPolicyViolation, "Closed for sending too many messages"},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			t.Parallel()
			f, p := setupClient(t)
			f.closeCurrent(tc.code, "server says so")
			p.until(`hub.state === "closed"`)
			last := run(p, chromedp.Evaluate[string](`JSON.stringify((({code, terminal, text}) => [code, terminal, text])(events.filter(e => e.type === "state").at(-1)))`))
			require.Equal(t, fmt.Sprintf(`[%d,true,%q]`, tc.code, tc.text), last)
			// Many backoff periods later, still no new token or socket.
			time.Sleep(time.Second)
			tokens, conns, _, _, _ := f.snapshot()
			require.Equal(t, 1, tokens)
			require.Equal(t, 1, conns)
			require.Equal(t, "closed", run(p, chromedp.Evaluate[string](`hub.state`)))
		})
	}
}

func TestClientStopsWhenTheSessionIsGone(t *testing.T) {
	t.Parallel()
	f, p := setupClient(t)
	f.mu.Lock()
	f.refuse = true
	f.mu.Unlock()
	f.closeCurrent(websocket.StatusGoingAway, "draining")
	p.until(`hub.state === "closed" && events.at(-1).terminal === true`)
	require.Equal(t, `[4401,"Signed out"]`, run(p, chromedp.Evaluate[string](`JSON.stringify([events.at(-1).code, events.at(-1).text])`)))
	// Backoff math: full jitter below the capped ceiling.
	require.True(t, run(p, chromedp.Evaluate[bool](`[0,1,2,5,10,40].every(n => {
		const d = m.backoffDelay(n, 500, 30000, () => 0.999999);
		return d < Math.min(30000, 500 * 2 ** n) && d >= Math.min(30000, 500 * 2 ** n) * 0.99 && m.backoffDelay(n, 500, 30000, () => 0) === 0;
	})`)))
}
