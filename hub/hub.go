package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Background loop tuning, each with why.
const (
	beatEvery    = 5 * time.Second // three beats fit in the 15 s presence window
	beatDebounce = time.Second     // extra beats after connects/disconnects: other nodes current within 1 s, Redis sees ≤ 1 write/s per node
	statusChunk  = 1000            // session ids per Status call: one pipelined round trip each
	drainStep    = 20 * time.Millisecond
	recentKeep   = time.Minute // how long a revocation is remembered for handshakes that raced it
)

// Hub is one node's realtime server. Its methods are safe for concurrent
// use; Run runs the background loops, Shutdown drains.
type Hub struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	m    *metrics
	br   broker
	reg  *registry
	// sessions batches the handshakes' liveness reads.
	sessions *liveness
	// flush writes sockets with queued frames.
	flush *flusher
	// bcast runs channel broadcasts.
	bcast *broadcaster

	started  time.Time
	draining atomic.Bool
	nextID   atomic.Uint64
	bufs     sync.Pool
	live     atomic.Int64 // socket readers still running
	writers  atomic.Int64 // writer goroutines running (0 when every queue is empty)

	reconcileKick chan struct{}
	// beatKick asks the presence loop for an early (debounced) beat after
	// the connection count changed.
	beatKick chan struct{}

	recentMu sync.Mutex
	recent   map[recentKey]int64 // revoked session or user → unix ns the revocation arrived

	acks acker // revocation acks, sent in batches (revoke.go)
}

// New validates cfg and deps and builds a hub; call Run to start it.
func New(cfg Config, deps Deps) (*Hub, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if deps.Verifier == nil || deps.Sessions == nil {
		return nil, fmt.Errorf("%w: Verifier and Sessions are required", ErrConfig)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	h := &Hub{
		cfg: cfg, deps: deps, log: cfg.Logger, m: m,
		started:       cfg.Now(),
		reconcileKick: make(chan struct{}, 1),
		beatKick:      make(chan struct{}, 1),
		recent:        make(map[recentKey]int64),
	}
	h.bufs.New = func() any { b := make([]byte, maxMessage+1); return &b }
	if deps.Redis != nil {
		h.br = newRedisBroker(deps.Redis, cfg.Prefix, h.log, m.reconnects)
	} else {
		h.br = newMemoryBroker(h)
	}
	h.reg = newRegistry(h.br)
	h.sessions = newLiveness(deps.Sessions.Status)
	h.flush = newFlusher()
	h.bcast = newBroadcaster(h.reg, m.msgOut, m.broadcast)
	h.reg.bcast = h.bcast
	h.br.Subscribe(revocationChannel)
	h.br.Subscribe(h.nodeChannel())
	return h, nil
}

// revocationChannel is sessions' channel (after the prefix).
const revocationChannel = "revocations"

func (h *Hub) nodeChannel() string { return "node:" + h.cfg.NodeID }

// NodeID is this node's id, as in welcome frames.
func (h *Hub) NodeID() string { return h.cfg.NodeID }

// Ready reports whether the node takes new sockets: false from the first
// moment of a drain, so /readyz takes it out of the load balancer.
func (h *Hub) Ready() bool { return !h.draining.Load() }

// Draining reports whether Shutdown has begun.
func (h *Hub) Draining() bool { return h.draining.Load() }

// Connections is the number of live sockets on this node.
func (h *Hub) Connections() int {
	n := 0
	for i := range numShards {
		s := &h.reg.users[i]
		s.mu.RLock()
		for _, l := range s.m {
			n += len(l)
		}
		s.mu.RUnlock()
	}
	return n
}

// Run runs the broker link, heartbeats, the session sweep and node presence
// until ctx ends. It returns nil after a clean stop.
func (h *Hub) Run(ctx context.Context) error {
	h.beat(ctx)
	var wg sync.WaitGroup
	loops := []func(context.Context){
		func(ctx context.Context) { _ = h.br.Run(ctx, h) },
		h.heartbeatLoop, h.sweepLoop, h.presenceLoop, h.sessions.group.Run, h.flush.run, h.bcast.run,
	}
	for _, f := range loops {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	wg.Wait()
	h.stopAcks()
	lctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = h.br.Leave(lctx, h.cfg.NodeID)
	return nil
}

func (h *Hub) beat(ctx context.Context) {
	if err := h.br.Beat(ctx, NodeInfo{ID: h.cfg.NodeID, Connections: h.Connections(), StartedAt: h.started}); err != nil {
		h.log.Warn("hub: presence beat failed", "err", err)
	}
}

// presenceLoop beats every beatEvery, and also after the connection count
// changed (connectionsChanged), at most once per beatDebounce, so other
// nodes' /admin/stats is current within about a second.
func (h *Hub) presenceLoop(ctx context.Context) {
	every := h.cfg.beatEvery
	if every <= 0 {
		every = beatEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var debounce *time.Timer
	var fire <-chan time.Time // the armed debounced beat; nil when none
	defer func() {
		if debounce != nil {
			debounce.Stop()
		}
	}()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-h.beatKick:
			if fire != nil {
				continue // the armed beat reads the count when it fires
			}
			if wait := beatDebounce - time.Since(last); wait > 0 {
				debounce = time.NewTimer(wait)
				fire = debounce.C
				continue
			}
		case <-fire:
			fire = nil
		}
		h.beat(ctx)
		last = time.Now()
	}
}

// connectionsChanged asks for an early presence beat; it never blocks.
func (h *Hub) connectionsChanged() {
	select {
	case h.beatKick <- struct{}{}:
	default:
	}
}

// heartbeatLoop pings every socket each Heartbeat and cuts one that has
// sent nothing (not even a pong) since the previous ping.
func (h *Hub) heartbeatLoop(ctx context.Context) {
	// One slice of the sockets per tick (see spreadTick): each is pinged
	// once per Heartbeat, the node never pings them all at once.
	p := planSpread(h.cfg.Heartbeat)
	t := time.NewTicker(p.every)
	defer t.Stop()
	ping := pingFrame()
	for j := 0; ; j = (j + 1) % p.slices {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now().UnixNano()
		lo, hi, sub := p.slice(j)
		for _, c := range h.reg.allIn(lo, hi) {
			if c.id%uint64(p.m) != uint64(sub) {
				continue
			}
			if c.pingedAt != 0 && c.lastSeen.Load() < c.pingedAt {
				c.kill(DisconnectHeartbeat)
				continue
			}
			c.pingedAt = now
			c.offer(ping)
		}
	}
}

// Nodes lists the live nodes sharing the prefix (for /admin/stats). This
// node's entry carries its live connection count rather than the one of
// its last beat, and is there even before its first beat landed: the node
// answering is alive by definition. Other nodes' figures are as of their
// last beat (at most beatDebounce behind a change, beatEvery at worst).
func (h *Hub) Nodes(ctx context.Context) ([]NodeInfo, error) {
	nodes, err := h.br.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	self := NodeInfo{ID: h.cfg.NodeID, Connections: h.Connections(), StartedAt: h.started}
	for i := range nodes {
		if nodes[i].ID == self.ID {
			nodes[i] = self
			return nodes, nil
		}
	}
	return append(nodes, self), nil
}

// Publish sends data (valid JSON) to channel on every node, from "server".
func (h *Hub) Publish(ctx context.Context, channel string, data json.RawMessage) error {
	if !validChannel(channel) || !json.Valid(data) {
		return fmt.Errorf("%w: bad channel or data", ErrConfig)
	}
	return h.publish(ctx, channel, data, "server")
}

func (h *Hub) publish(ctx context.Context, channel string, data []byte, from string) error {
	return h.br.Publish(ctx, "ch:"+channel, messagePayload(channel, data, from))
}

// unregister removes a finished socket from the indexes.
func (h *Hub) unregister(c *conn) {
	h.reg.remove(c)
	h.connectionsChanged()
}

// Shutdown drains: readiness turns false and handshakes are refused at
// once, then sockets are closed with 1001 spread evenly over Config.Drain
// (so clients do not stampede the other nodes), and Shutdown waits for them
// to end. When ctx ends first, the remaining sockets are cut. Calling it
// again waits again.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.draining.Store(true)
	conns := h.reg.all()
	window := h.cfg.Drain
	if dl, ok := ctx.Deadline(); ok {
		// Leave a third of what remains for close handshakes.
		window = min(window, time.Until(dl)*2/3)
	}
	steps := max(int(window/drainStep), 1)
	per := (len(conns) + steps - 1) / steps
	t := time.NewTicker(drainStep)
	defer t.Stop()
	for i := 0; i < len(conns); i += per {
		for _, c := range conns[i:min(i+per, len(conns))] {
			c.closeWith(DisconnectGoingAway, 0)
		}
		if i+per >= len(conns) {
			break
		}
		select {
		case <-ctx.Done():
			for _, c := range conns[i+per:] {
				c.kill(DisconnectGoingAway)
			}
			i = len(conns)
		case <-t.C:
		}
	}
	for h.live.Load() > 0 {
		select {
		case <-ctx.Done():
			for _, c := range h.reg.all() {
				c.kill(DisconnectGoingAway)
			}
			for h.live.Load() > 0 {
				time.Sleep(time.Millisecond)
			}
			return fmt.Errorf("hub: shutdown: %w", ctx.Err())
		case <-t.C:
		}
	}
	return nil
}
