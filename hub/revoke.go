package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"time"
)

// revocation is the JSON event sessions publishes on <prefix>revocations.
type revocation struct {
	Kind      string    `json:"kind"`
	SessionID string    `json:"session_id"`
	UserID    string    `json:"user_id"`
	Reason    string    `json:"reason"`
	IssuedAt  time.Time `json:"issued_at"`
	RequestID string    `json:"request_id"`
}

// ack is what each node publishes on <prefix>acks:<request_id>.
type ack struct {
	Node   string `json:"node"`
	Closed int    `json:"closed"`
}

// control is a message on a node's own channel: another node's ledger
// decided that one of our sockets is past its user's limit.
type control struct {
	Evict string `json:"evict"` // member "node|socket"
	User  string `json:"user"`
}

// message implements brokerHandler. It runs on the broker's receive
// goroutine: everything here only queues frames or starts closes.
func (h *Hub) message(channel string, payload []byte) {
	switch {
	case channel == revocationChannel:
		h.HandleRevocation(payload)
	case channel == h.nodeChannel():
		var c control
		if json.Unmarshal(payload, &c) == nil {
			h.evictLocal(c.User, c.Evict)
		}
	case strings.HasPrefix(channel, "ch:user:"):
		frame := textFrame(payload)
		h.m.msgOut.Add(float64(h.reg.toUser(channel[len("ch:user:"):], frame)))
	case strings.HasPrefix(channel, "ch:"):
		frame := textFrame(payload)
		h.m.msgOut.Add(float64(h.reg.toChannel(channel[len("ch:"):], frame)))
	}
}

// reconnected implements brokerHandler: revocations may have been missed
// while the control link was down, so every live session is re-checked.
func (h *Hub) reconnected(control bool) {
	if control {
		select {
		case h.reconcileKick <- struct{}{}:
		default:
		}
	}
}

// HandleRevocation applies one revocation event (the JSON of sessions.Event).
// The Redis broker calls it for every event on <prefix>revocations; in
// memory mode cmd feeds it the in-process events.
func (h *Hub) HandleRevocation(payload []byte) {
	var ev revocation
	if err := json.Unmarshal(payload, &ev); err != nil {
		h.log.Warn("hub: bad revocation event", "err", err)
		return
	}
	issued := ev.IssuedAt.UnixNano()
	if ev.IssuedAt.IsZero() {
		issued = 0
	}
	var conns []*conn
	var d Disconnect
	switch ev.Kind {
	case "session":
		conns, d = h.reg.sessionConns(ev.SessionID), DisconnectRevoked
		if ev.Reason == "expired" {
			d = DisconnectExpired
		}
		h.remember(recentKey{'s', ev.SessionID})
	case "user":
		conns, d = h.reg.userConns(ev.UserID), DisconnectLoggedOut
		h.remember(recentKey{'u', ev.UserID})
	default:
		h.log.Warn("hub: unknown revocation kind", "kind", ev.Kind)
		return
	}
	closed := 0
	for _, c := range conns {
		if c.closeWith(d, issued) {
			closed++
		}
	}
	if ev.RequestID != "" {
		h.queueAck(ev.RequestID, closed)
	}
}

// acker batches this node's acks: while one batch is being published the
// acks of the revocations that arrive queue, and the next batch sends all
// of them in one round trip (a burst of admin revocations is one ack per
// revocation per node).
// It also keeps the list of live nodes that Acknowledge waits for.
type acker struct {
	mu      sync.Mutex
	busy    bool
	queue   []pubMsg
	stopped bool           // Run has ended: acks are dropped
	sends   sync.WaitGroup // the running sendAcks; Run waits for it

	nodesMu sync.Mutex
	nodesAt time.Time
	nodeIDs []string
}

// pubMsg is one message for publishMany.
type pubMsg struct {
	channel string
	payload []byte
}

// multiPublisher is a broker that publishes several messages in one round
// trip.
type multiPublisher interface {
	publishMany(ctx context.Context, msgs []pubMsg) error
}

// queueAck queues the ack without waiting: it runs on the broker's receive
// goroutine.
func (h *Hub) queueAck(requestID string, closed int) {
	b, _ := json.Marshal(ack{Node: h.cfg.NodeID, Closed: closed})
	a := &h.acks
	a.mu.Lock()
	if a.stopped { // a node that has stopped acknowledges nothing
		a.mu.Unlock()
		return
	}
	a.queue = append(a.queue, pubMsg{"acks:" + requestID, b})
	lead := !a.busy
	a.busy = true
	if lead {
		a.sends.Add(1) // under mu, so never after stop's Wait began
	}
	a.mu.Unlock()
	if lead {
		go func() { defer a.sends.Done(); h.sendAcks() }()
	}
}

// stopAcks drops acks from now on and waits for the batch being sent.
func (h *Hub) stopAcks() {
	h.acks.mu.Lock()
	h.acks.stopped = true
	h.acks.mu.Unlock()
	h.acks.sends.Wait()
}

func (h *Hub) sendAcks() {
	a := &h.acks
	for {
		a.mu.Lock()
		batch := a.queue
		a.queue = nil
		if len(batch) == 0 {
			a.busy = false
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var err error
		if mp, ok := h.br.(multiPublisher); ok {
			err = mp.publishMany(ctx, batch)
		} else {
			for _, m := range batch {
				if e := h.br.Publish(ctx, m.channel, m.payload); e != nil {
					err = e
				}
			}
		}
		cancel()
		if err != nil {
			h.log.Warn("hub: acks not sent", "acks", len(batch), "err", err)
		}
	}
}

// recentKey names a revoked session ('s') or user ('u').
type recentKey struct {
	kind byte
	id   string
}

// remember notes a revocation for handshakes still in flight: one that
// checked the session just before the event arrived must not survive it.
func (h *Hub) remember(key recentKey) {
	h.recentMu.Lock()
	h.recent[key] = time.Now().UnixNano()
	h.recentMu.Unlock()
}

// revokedSince reports whether a revocation of the socket's session or
// user arrived at or after t (unix ns).
func (h *Hub) revokedSince(c *conn, t int64) (Disconnect, bool) {
	h.recentMu.Lock()
	defer h.recentMu.Unlock()
	if len(h.recent) == 0 {
		return 0, false
	}
	if at, ok := h.recent[recentKey{'u', c.ident.UserID}]; ok && at >= t {
		return DisconnectLoggedOut, true
	}
	if at, ok := h.recent[recentKey{'s', c.ident.SessionID}]; ok && at >= t {
		return DisconnectRevoked, true
	}
	return 0, false
}

func (h *Hub) pruneRecent() {
	cut := time.Now().Add(-recentKeep).UnixNano()
	h.recentMu.Lock()
	for k, at := range h.recent {
		if at < cut {
			delete(h.recent, k)
		}
	}
	h.recentMu.Unlock()
}

// evictLocal closes one of our sockets with 4009.
func (h *Hub) evictLocal(userID, m string) {
	for _, c := range h.reg.userConns(userID) {
		if member(h.cfg.NodeID, c.id) == m {
			c.closeWith(DisconnectTooMany, 0)
		}
	}
}

// spreadTick is the least period at which the sweep and the heartbeat each
// do a slice of their work: every session (socket) still gets its check
// (ping) once per interval, but a node never does all of it at once. A full
// heartbeat round is a write and a pong read per socket, a full sweep a
// Redis read per session; on a core shared by three nodes, revocations
// arriving meanwhile waited behind them. Slices of ~100 ms keep each one
// to a few dozen sockets.
const spreadTick = 100 * time.Millisecond

// spreadPlan cuts one interval into slices: slice j covers the registry's
// session shards [lo, hi) and, within them, the items whose sub-key is
// sub mod m (m > 1 only when there are more slices than shards).
type spreadPlan struct {
	slices, m int
	every     time.Duration
}

func planSpread(interval time.Duration) spreadPlan {
	k := max(1, int(interval/spreadTick))
	ranges := min(k, numShards)
	m := max(1, k/numShards)
	return spreadPlan{slices: ranges * m, m: m, every: interval / time.Duration(ranges*m)}
}

// slice returns the shard range and sub-key of slice j.
func (p spreadPlan) slice(j int) (lo, hi, sub int) {
	ranges := p.slices / p.m
	r := j / p.m
	return r * numShards / ranges, (r + 1) * numShards / ranges, j % p.m
}

// subKey of a session id, independent of its shard (the shard uses the low
// bits of the same hash).
func (r *registry) subKey(id string, m int) int {
	if m == 1 {
		return 0
	}
	return int((maphash.String(r.seed, id) >> 8) % uint64(m))
}

// sweepLoop re-checks every live session once per SweepInterval, one slice
// of the registry's session shards per tick (so each session is checked
// exactly once per interval), and all of them at once after the control
// link reconnects.
func (h *Hub) sweepLoop(ctx context.Context) {
	p := planSpread(h.cfg.SweepInterval)
	t := time.NewTicker(p.every)
	defer t.Stop()
	lastPrune := time.Now()
	for j := 0; ; j = (j + 1) % p.slices {
		lo, hi, sub := p.slice(j)
		m := p.m
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-h.reconcileKick:
			lo, hi, m = 0, numShards, 1
		}
		ids := h.reg.sessionIDsIn(lo, hi)
		if m > 1 {
			ids = slices.DeleteFunc(ids, func(id string) bool { return h.reg.subKey(id, m) != sub })
		}
		if err := h.reconcile(ctx, ids); err != nil && ctx.Err() == nil {
			h.log.Warn("hub: session sweep incomplete", "err", err)
		}
		if time.Since(lastPrune) >= h.cfg.SweepInterval {
			lastPrune = time.Now()
			h.pruneRecent()
		}
	}
}

// reconcile closes the sockets of every session of ids that is no longer
// alive: 4001 when revoked, 4002 after a global logout, 4003 when expired.
func (h *Hub) reconcile(ctx context.Context, ids []string) error {
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), statusChunk)]
		ids = ids[len(chunk):]
		states, err := h.deps.Sessions.Status(ctx, chunk)
		if err != nil {
			return fmt.Errorf("hub: sweep: %w", err)
		}
		for i, st := range states {
			if i >= len(chunk) {
				break
			}
			var d Disconnect
			switch st {
			case SessionAlive:
				continue
			case SessionExpired:
				d = DisconnectExpired
			case SessionLoggedOut:
				d = DisconnectLoggedOut
			default:
				d = DisconnectRevoked
			}
			for _, c := range h.reg.sessionConns(chunk[i]) {
				c.closeWith(d, 0)
			}
		}
	}
	return nil
}

// Acknowledge starts collecting acks for requestID; call it before the
// revocation carrying that request_id is published. wait returns, after
// timeout or as soon as every live node answered, the sockets closed over
// all nodes and how many nodes answered. wait may be called once.
func (h *Hub) Acknowledge(ctx context.Context, requestID string) (func(timeout time.Duration) (socketsClosed, nodesAcked int), error) {
	msgs, stop, err := h.br.Listen(ctx, "acks:"+requestID)
	if err != nil {
		return nil, err
	}
	var once sync.Once
	wait := func(timeout time.Duration) (closed, nodes int) {
		once.Do(func() {
			defer stop()
			deadline := time.NewTimer(timeout)
			defer deadline.Stop()
			want := map[string]bool{}
			for _, id := range h.liveNodes(timeout) {
				want[id] = true
			}
			seen := map[string]bool{}
			for {
				select {
				case b := <-msgs:
					var a ack
					if json.Unmarshal(b, &a) != nil || a.Node == "" || seen[a.Node] {
						continue
					}
					seen[a.Node] = true
					closed += a.Closed
					nodes++
					if len(want) > 0 && covers(seen, want) {
						return
					}
				case <-deadline.C:
					return
				}
			}
		})
		return closed, nodes
	}
	return wait, nil
}

func covers(seen, want map[string]bool) bool {
	for id := range want {
		if !seen[id] {
			return false
		}
	}
	return true
}

// liveNodesFresh is how long Acknowledge reuses the list of live nodes: a
// burst of admin revocations asks once, not once per revocation. It is
// well inside the presence window (a dead node stays listed 15 s anyway).
const liveNodesFresh = time.Second

// liveNodes returns the ids of the live nodes, from a list at most
// liveNodesFresh old; nil when presence cannot be read.
func (h *Hub) liveNodes(timeout time.Duration) []string {
	a := &h.acks
	a.nodesMu.Lock()
	if !a.nodesAt.IsZero() && time.Since(a.nodesAt) <= liveNodesFresh {
		ids := slices.Clone(a.nodeIDs)
		a.nodesMu.Unlock()
		return ids
	}
	a.nodesMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	live, err := h.br.Nodes(ctx)
	cancel()
	if err != nil {
		return nil
	}
	ids := make([]string, len(live))
	for i, n := range live {
		ids[i] = n.ID
	}
	a.nodesMu.Lock()
	a.nodeIDs, a.nodesAt = ids, time.Now()
	a.nodesMu.Unlock()
	return slices.Clone(ids)
}
