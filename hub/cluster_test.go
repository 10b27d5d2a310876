package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/internal/testenv"
)

// cluster is three hub nodes on one Redis prefix.
type cluster struct {
	rdb     *redis.Client
	prefix  string
	auth    *fakeAuth
	a, b, c *node
}

func newCluster(t *testing.T, tweak func(*Config)) *cluster {
	rdb, prefix := testenv.Redis(t)
	auth := newFakeAuth()
	cl := &cluster{rdb: rdb, prefix: prefix, auth: auth}
	cl.a = startNode(t, auth, rdb, prefix, withID("A", tweak))
	cl.b = startNode(t, auth, rdb, prefix, withID("B", tweak))
	cl.c = startNode(t, auth, rdb, prefix, withID("C", tweak))
	return cl
}

func withID(id string, tweak func(*Config)) func(*Config) {
	return func(c *Config) {
		c.NodeID = id
		if tweak != nil {
			tweak(c)
		}
	}
}

// revoke publishes a revocation as sessions does.
func (cl *cluster) revoke(t *testing.T, ev map[string]any) {
	t.Helper()
	if _, ok := ev["issued_at"]; !ok {
		ev["issued_at"] = time.Now().UTC().Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(ev)
	require.NoError(t, err)
	require.NoError(t, cl.rdb.Publish(context.Background(), cl.prefix+"revocations", b).Err())
}

func TestRevokeSessionClosesItsSocketsOnEveryNode(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, nil)
	s1b := dial(t, cl.b, cl.auth.token("u1", "S1"))
	s1c := dial(t, cl.c, cl.auth.token("u1", "S1"))
	s2c := dial(t, cl.c, cl.auth.token("u1", "S2", "sub:room:*"))
	require.Equal(t, "B", s1b.welcome["node"])
	require.Equal(t, "S1", s1b.welcome["session_id"])
	require.Equal(t, "u1", s1b.welcome["user_id"])

	cl.auth.set("S1", SessionRevoked)
	cl.revoke(t, map[string]any{"kind": "session", "session_id": "S1", "user_id": "u1", "reason": "logout"})

	require.Equal(t, StatusSessionRevoked, s1b.closeCode())
	require.Equal(t, StatusSessionRevoked, s1c.closeCode())
	// S2 is untouched and still answers.
	require.Equal(t, "ack", s2c.request(map[string]any{"type": "subscribe", "channel": "room:1", "id": 1})["type"])
	eventually(t, func() bool { return cl.b.h.Connections() == 0 && cl.c.h.Connections() == 1 })
}

func TestRevokeExpiredSessionCloses4003(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, nil)
	s := dial(t, cl.a, cl.auth.token("u1", "S1"))
	cl.revoke(t, map[string]any{"kind": "session", "session_id": "S1", "user_id": "u1", "reason": "expired"})
	require.Equal(t, StatusSessionExpired, s.closeCode())
}

func TestUserRevocationClosesEverySocket4002(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, nil)
	var socks []*client
	for i, n := range []*node{cl.a, cl.b, cl.c} {
		socks = append(socks, dial(t, n, cl.auth.token("u1", "S"+string(rune('1'+i)))))
	}
	other := dial(t, cl.b, cl.auth.token("u2", "T1", "sub:room:*"))
	cl.revoke(t, map[string]any{"kind": "user", "user_id": "u1", "reason": "logout_all"})
	for _, s := range socks {
		require.Equal(t, StatusLoggedOut, s.closeCode())
	}
	require.Equal(t, "ack", other.request(map[string]any{"type": "subscribe", "channel": "room:x", "id": "a"})["type"])
}

func TestAcknowledgedRevocationCountsAcrossNodes(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, nil)
	tokB := cl.auth.token("u1", "S1")
	b1, b2 := dial(t, cl.b, tokB), dial(t, cl.b, tokB)
	c1 := dial(t, cl.c, cl.auth.token("u1", "S2"))

	wait, err := cl.a.h.Acknowledge(context.Background(), "req-1")
	require.NoError(t, err)
	cl.revoke(t, map[string]any{"kind": "user", "user_id": "u1", "reason": "admin", "request_id": "req-1"})
	closed, nodes := wait(2 * time.Second)
	require.Equal(t, 3, closed)
	require.Equal(t, 3, nodes)
	for _, s := range []*client{b1, b2, c1} {
		require.Equal(t, StatusLoggedOut, s.closeCode())
	}

	nodesList, err := cl.a.h.Nodes(context.Background())
	require.NoError(t, err)
	ids := []string{}
	for _, n := range nodesList {
		ids = append(ids, n.ID)
		require.False(t, n.StartedAt.IsZero())
	}
	require.ElementsMatch(t, []string{"A", "B", "C"}, ids)
}

func TestChannelFanOutAcrossNodes(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, nil)
	subB := dial(t, cl.b, cl.auth.token("u1", "S1", "sub:room:*"))
	subC := dial(t, cl.c, cl.auth.token("u2", "S2", "sub:room:*"))
	pub := dial(t, cl.a, cl.auth.token("u3", "S3", "pub:room:*"))
	for _, s := range []*client{subB, subC} {
		require.Equal(t, "ack", s.request(map[string]any{"type": "subscribe", "channel": "room:1", "id": 7})["type"])
	}
	require.Equal(t, "ack", pub.request(map[string]any{"type": "publish", "channel": "room:1", "id": "p", "data": map[string]any{"hi": 1}})["type"])
	for _, s := range []*client{subB, subC} {
		m := s.read()
		require.Equal(t, "message", m["type"])
		require.Equal(t, "room:1", m["channel"])
		require.Equal(t, "u3", m["from"])
		require.Equal(t, map[string]any{"hi": float64(1)}, m["data"])
	}
	// Unsubscribed sockets stop receiving; one Redis subscription per node.
	require.Equal(t, "ack", subB.request(map[string]any{"type": "unsubscribe", "channel": "room:1", "id": 8})["type"])
	n, err := cl.rdb.PubSubNumSub(context.Background(), cl.prefix+"ch:room:1").Result()
	require.NoError(t, err)
	eventually(t, func() bool {
		n, err = cl.rdb.PubSubNumSub(context.Background(), cl.prefix+"ch:room:1").Result()
		return err == nil && n[cl.prefix+"ch:room:1"] == 1
	})
}

func TestOneRedisSubscriptionPerChannelPerNode(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, nil)
	for i := range 5 {
		s := dial(t, cl.b, cl.auth.token("u1", "S"+string(rune('a'+i)), "sub:room:*"))
		require.Equal(t, "ack", s.request(map[string]any{"type": "subscribe", "channel": "room:9", "id": 1})["type"])
	}
	n, err := cl.rdb.PubSubNumSub(context.Background(), cl.prefix+"ch:room:9", cl.prefix+"ch:user:u1").Result()
	require.NoError(t, err)
	require.Equal(t, int64(1), n[cl.prefix+"ch:room:9"])
	require.Equal(t, int64(1), n[cl.prefix+"ch:user:u1"])
}

func TestPerUserLimitAcrossNodes(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, func(c *Config) { c.MaxSocketsPerUser = 2 })
	first := dial(t, cl.a, cl.auth.token("u1", "S1"))
	second := dial(t, cl.b, cl.auth.token("u1", "S2"))
	third := dial(t, cl.c, cl.auth.token("u1", "S3", "sub:room:*"))
	require.Equal(t, StatusTooMany, first.closeCode())
	require.Equal(t, "ack", second.request(map[string]any{"type": "subscribe", "channel": "user:u1", "id": 1})["type"])
	require.Equal(t, "ack", third.request(map[string]any{"type": "subscribe", "channel": "room:1", "id": 1})["type"])
	// Another user is not affected.
	dial(t, cl.a, cl.auth.token("u2", "T1"))
	fourth := dial(t, cl.a, cl.auth.token("u1", "S4"))
	require.Equal(t, StatusTooMany, second.closeCode())
	_ = fourth
}

func TestUserChannelPushThroughAPI(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, nil)
	s := dial(t, cl.c, cl.auth.token("u1", "S1"))
	worker := cl.auth.serviceToken("w", "W1", "mailer", "pub:user:*")
	status := postPublish(t, cl.a, worker, `{"channel":"user:u1","data":{"n":1}}`)
	require.Equal(t, 202, status)
	m := s.read()
	require.Equal(t, "message", m["type"])
	require.Equal(t, "user:u1", m["channel"])
	require.Equal(t, "service:mailer", m["from"])

	noGrant := cl.auth.token("u9", "S9", "pub:room:*")
	require.Equal(t, 403, postPublish(t, cl.a, noGrant, `{"channel":"user:u1","data":1}`))
	require.Equal(t, 401, postPublish(t, cl.a, "", `{"channel":"user:u1","data":1}`))
	require.Equal(t, 400, postPublish(t, cl.a, worker, `{"channel":"user:u1"}`))
}

// TestLostRevocationIsCaughtByReconcile cuts the node's pub/sub link (a
// private redis-server killed and restarted empty), revokes meanwhile, and
// expects the reconnect re-check to close the socket.
func TestLostRevocationIsCaughtByReconcile(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	auth := newFakeAuth()
	n := startNode(t, auth, rdb, "t:lost:", func(c *Config) { c.SweepInterval = time.Hour })
	victim := dial(t, n, auth.token("u1", "S1"))
	survivor := dial(t, n, auth.token("u2", "S2", "sub:room:*"))

	srv.Kill()
	auth.set("S1", SessionRevoked) // the event is published while Redis is down: lost
	srv.Start()

	require.Equal(t, StatusSessionRevoked, victim.closeCode())
	require.Equal(t, "ack", survivor.request(map[string]any{"type": "subscribe", "channel": "room:1", "id": 1})["type"])
	eventually(t, func() bool { return testutilCounter(n, "sessionhub_redis_pubsub_reconnects_total") >= 1 })
}

func TestSweepClosesDeadSessions(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	auth := newFakeAuth()
	n := startNode(t, auth, rdb, prefix, func(c *Config) { c.SweepInterval = 50 * time.Millisecond })
	rev := dial(t, n, auth.token("u1", "S1"))
	exp := dial(t, n, auth.token("u2", "S2"))
	out := dial(t, n, auth.token("u4", "S4"))
	live := dial(t, n, auth.token("u3", "S3", "sub:room:*"))
	auth.set("S1", SessionRevoked)
	auth.set("S2", SessionExpired)
	auth.set("S4", SessionLoggedOut)
	require.Equal(t, StatusSessionRevoked, rev.closeCode())
	require.Equal(t, StatusSessionExpired, exp.closeCode())
	require.Equal(t, StatusLoggedOut, out.closeCode())
	require.Equal(t, "ack", live.request(map[string]any{"type": "subscribe", "channel": "room:1", "id": 1})["type"])
	_ = websocket.StatusGoingAway
}

// TestAcknowledgedRevocationBurst: many acknowledged revocations published
// at once (one pipeline, as sessions does for a group) are each answered by
// every node, with each request's own count, though a node sends its acks
// in batches.
func TestAcknowledgedRevocationBurst(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, nil)
	const n = 30
	var socks []*client
	var waits []func(time.Duration) (int, int)
	for i := range n {
		sid := fmt.Sprintf("S%d", i)
		tok := cl.auth.token(fmt.Sprintf("u%d", i), sid)
		socks = append(socks, dial(t, cl.b, tok))
		if i%2 == 0 { // even sessions have a second socket, on C
			socks = append(socks, dial(t, cl.c, tok))
		}
		wait, err := cl.a.h.Acknowledge(context.Background(), "burst-"+sid)
		require.NoError(t, err)
		waits = append(waits, wait)
	}
	_, err := cl.rdb.Pipelined(context.Background(), func(p redis.Pipeliner) error {
		for i := range n {
			sid := fmt.Sprintf("S%d", i)
			b, _ := json.Marshal(map[string]any{"kind": "session", "session_id": sid, "user_id": fmt.Sprintf("u%d", i),
				"reason": "admin", "request_id": "burst-" + sid, "issued_at": time.Now().UTC()})
			p.Publish(context.Background(), cl.prefix+"revocations", b)
		}
		return nil
	})
	require.NoError(t, err)
	for i, wait := range waits {
		closed, nodes := wait(5 * time.Second)
		require.Equal(t, 3, nodes, "S%d: every node answered", i)
		require.Equal(t, 1+(1-i%2), closed, "S%d: its own sockets only", i)
	}
	for _, s := range socks {
		require.Equal(t, StatusSessionRevoked, s.closeCode())
	}
}

// TestSpreadCoversEverySessionOnce: the sweep and the heartbeat spread
// one interval over slices that, together, cover every shard and every
// sub-key exactly once, so every session is checked (every socket pinged)
// once per interval.
func TestSpreadCoversEverySessionOnce(t *testing.T) {
	t.Parallel()
	reg := newRegistry(newMemoryBroker(nil))
	var ids []string
	for i := range 2000 {
		ids = append(ids, fmt.Sprintf("session-%d", i))
	}
	for _, interval := range []time.Duration{time.Millisecond, 50 * time.Millisecond, time.Second,
		7 * time.Second, 25 * time.Second, 30 * time.Second, time.Hour} {
		p := planSpread(interval)
		require.GreaterOrEqual(t, p.slices, 1)
		require.GreaterOrEqual(t, p.every, min(interval, spreadTick)/2, interval)
		require.LessOrEqual(t, p.every*time.Duration(p.slices), interval)
		seen := map[string]int{}
		for j := range p.slices {
			lo, hi, sub := p.slice(j)
			for _, id := range ids {
				if sh := reg.shard(id); sh >= lo && sh < hi && reg.subKey(id, p.m) == sub {
					seen[id]++
				}
			}
		}
		for _, id := range ids {
			require.Equal(t, 1, seen[id], "%s: %s", interval, id)
		}
	}
}
