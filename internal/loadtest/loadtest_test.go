package loadtest

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

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

// fakeHub speaks just enough of the socket protocol for the load tool's own
// plumbing to be tested: welcome, subscribe acks, and a close on demand.
type fakeHub struct {
	mu    sync.Mutex
	conns map[string][]*websocket.Conn
}

func (f *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	proto := r.Header.Get("Sec-WebSocket-Protocol")
	_, tok, _ := strings.Cut(proto, "bearer.")
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"sessionhub.v1"}})
	if err != nil {
		return
	}
	sid := strings.TrimSpace(tok)
	f.mu.Lock()
	f.conns[sid] = append(f.conns[sid], c)
	f.mu.Unlock()
	ctx := r.Context()
	_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"welcome"}`))
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		var m struct{ Type, ID string }
		_ = json.Unmarshal(msg, &m)
		if m.Type == "subscribe" {
			_ = c.Write(ctx, websocket.MessageText, []byte(fmt.Sprintf(`{"type":"ack","id":%q}`, m.ID)))
			data := fmt.Sprintf(`{"type":"message","channel":"c","data":{"t":%d},"from":"server"}`, time.Now().UnixNano())
			_ = c.Write(ctx, websocket.MessageText, []byte(data))
		}
	}
}

func TestPoolOpensCountsAndSeesCloses(t *testing.T) {
	t.Parallel()
	hub := &fakeHub{conns: map[string][]*websocket.Conn{}}
	srv := httptest.NewServer(hub)
	t.Cleanup(srv.Close)

	var mu sync.Mutex
	closed := map[string]int{}
	pool, err := NewPool(context.Background(), PoolConfig{Sockets: 20, OnClose: func(sid string, code int, at, _ time.Time) {
		mu.Lock()
		closed[sid] = code
		mu.Unlock()
	}})
	require.NoError(t, err)
	var conns []Conn
	for i := 0; i < 20; i++ {
		conns = append(conns, Conn{URL: wsURL(srv.URL), Token: fmt.Sprintf("s%d", i), SessionID: fmt.Sprintf("s%d", i), Subscribe: []string{"c"}})
	}
	res, err := pool.Open(conns, 4, 3)
	require.NoError(t, err)
	require.Equal(t, 20, res.OK, res.Errors)
	require.Len(t, res.Handshake, 20)

	// Stats resets the delivery counters, so add them up across calls.
	var msgs int64
	var lat int
	require.Eventually(t, func() bool {
		st, err := pool.Stats()
		require.NoError(t, err)
		msgs += st.Messages
		lat += len(st.Latency)
		return st.Open == 20 && msgs == 20 && lat == 20
	}, 5*time.Second, 20*time.Millisecond)

	hub.mu.Lock()
	c := hub.conns["s7"][0]
	hub.mu.Unlock()
	require.NoError(t, c.Close(4001, "session revoked"))
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return closed["s7"] == 4001
	}, 5*time.Second, 10*time.Millisecond)
	pool.Close()
}

func TestPoolNeedsWorkerCommandPastOneProcess(t *testing.T) {
	t.Parallel()
	_, err := NewPool(context.Background(), PoolConfig{Sockets: 30, PerProcess: 10})
	require.ErrorContains(t, err, "worker processes")
}

func TestQuantiles(t *testing.T) {
	t.Parallel()
	var d Durations
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	require.Equal(t, 50*time.Millisecond, d.Quantile(0.5))
	require.Equal(t, 99*time.Millisecond, d.Quantile(0.99))
	require.Equal(t, 100*time.Millisecond, d.Max())
	require.Equal(t, time.Duration(0), Durations{}.Quantile(0.99))
}

func TestParseSample(t *testing.T) {
	t.Parallel()
	s := parseSample("# HELP x\nprocess_resident_memory_bytes 1.5e+07\nprocess_cpu_seconds_total 2.5\ngo_goroutines 12\nsessionhub_hub_connections 3\nsessionhub_hub_connects_total{result=\"ok\"} 9\n")
	require.Equal(t, ServerSample{RSS: 1.5e7, CPU: 2.5, Goroutines: 12, Conns: 3}, s)
}

func TestRevokeCloseHistogram(t *testing.T) {
	t.Parallel()
	before := parseSample(`sessionhub_hub_revoke_close_seconds_bucket{le="0.001"} 1
sessionhub_hub_revoke_close_seconds_bucket{le="0.005"} 1
sessionhub_hub_revoke_close_seconds_bucket{le="+Inf"} 1
`)
	after := parseSample(`sessionhub_hub_revoke_close_seconds_bucket{le="0.001"} 51
sessionhub_hub_revoke_close_seconds_bucket{le="0.005"} 100
sessionhub_hub_revoke_close_seconds_bucket{le="+Inf"} 101
`)
	p50, ok := HistQuantile(before.RevokeClose, after.RevokeClose, 0.5)
	require.True(t, ok)
	require.Equal(t, 0.001, p50)
	p99, _ := HistQuantile(before.RevokeClose, after.RevokeClose, 0.99)
	require.Equal(t, 0.005, p99)
	_, ok = HistQuantile(after.RevokeClose, after.RevokeClose, 0.5)
	require.False(t, ok)
}

func TestDeliveryTime(t *testing.T) {
	for _, c := range []struct {
		msg  string
		t    int64
		isOK bool
	}{
		{`{"type":"message","channel":"bench:fanout","data":{"t":1764088000123456789},"from":"service:x"}`, 1764088000123456789, true},
		{`{"type":"message","channel":"c","data":{"x":1},"from":"u"}`, 0, true},
		{`{"channel":"c","type":"message","data":{"t":42}}`, 42, true},
		{`{"type":"message","channel":"c","data":{"t":12,"u":1},"from":"u"}`, 12, true},
		{`{"type":"ack","id":"s0"}`, 0, false},
		{`not json`, 0, false},
	} {
		got, ok := deliveryTime([]byte(c.msg))
		require.Equal(t, c.isOK, ok, c.msg)
		require.Equal(t, c.t, got, c.msg)
	}
}
