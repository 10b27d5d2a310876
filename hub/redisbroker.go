package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Pub/sub link tuning, each with why.
const (
	pingEvery     = time.Second     // idle links ping this often, so a dead one is seen within deadAfter
	deadAfter     = 3 * time.Second // a link that heard nothing, not even a pong, is rebuilt
	retryMax      = time.Second     // cap of the reconnect backoff: Redis is usually back within seconds
	subBatch      = 500             // channels per SUBSCRIBE command during connect storms
	ledgerTimeout = 2 * time.Second // a ledger call never holds a handshake longer than this
	ledgerTTL     = 8 * 24 * time.Hour
)

// redisBroker is the production broker. It keeps two pub/sub links per node:
// "control" (revocations, this node's control channel) and "data" (message
// channels), so that a large fan-out never delays a revocation. Every key
// and channel starts with prefix; the hub's keys also carry the {hub} hash
// tag, so that its scripts stay on one Redis Cluster slot.
type redisBroker struct {
	rdb       redis.UniversalClient
	prefix    string
	log       *slog.Logger
	reconnect prometheus.Counter

	control, data *psLink
	ledger        *ledger
	acks          *ackMux

	beat, nodes, addSock *redis.Script
}

func newRedisBroker(rdb redis.UniversalClient, prefix string, log *slog.Logger, reconnects prometheus.Counter) *redisBroker {
	b := &redisBroker{
		rdb: rdb, prefix: prefix, log: log, reconnect: reconnects,
		beat:    redis.NewScript(beatLua),
		nodes:   redis.NewScript(nodesLua),
		addSock: redis.NewScript(addSocketLua),
	}
	b.ledger = newLedger(b)
	b.acks = newAckMux(rdb, prefix)
	b.control = newLink(b, true)
	b.data = newLink(b, false)
	return b
}

func (b *redisBroker) link(channel string) *psLink {
	if strings.HasPrefix(channel, "ch:") {
		return b.data
	}
	return b.control
}

func (b *redisBroker) Run(ctx context.Context, h brokerHandler) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); b.ledger.adds.Run(ctx) }()
	for _, l := range []*psLink{b.control, b.data} {
		wg.Add(2)
		go func() { defer wg.Done(); l.syncLoop(ctx) }()
		go func() { defer wg.Done(); l.receiveLoop(ctx, h) }()
	}
	wg.Wait()
	b.control.close()
	b.data.close()
	b.acks.close()
	return nil
}

func (b *redisBroker) Publish(ctx context.Context, channel string, payload []byte) error {
	if err := b.rdb.Publish(ctx, b.prefix+channel, payload).Err(); err != nil {
		return fmt.Errorf("hub: publish: %w", err)
	}
	return nil
}

// publishMany publishes msgs in one pipeline (one round trip).
func (b *redisBroker) publishMany(ctx context.Context, msgs []pubMsg) error {
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range msgs {
			p.Publish(ctx, b.prefix+m.channel, m.payload)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("hub: publish: %w", err)
	}
	return nil
}

func (b *redisBroker) Subscribe(channel string) <-chan struct{} {
	return b.link(channel).want(channel)
}

func (b *redisBroker) Unsubscribe(channel string) { b.link(channel).unwant(channel) }

func (b *redisBroker) Listen(ctx context.Context, channel string) (<-chan []byte, func(), error) {
	return b.acks.listen(ctx, b.prefix+channel)
}

func (b *redisBroker) hubKey(s string) string { return b.prefix + "{hub}:" + s }

// beatLua records a node as alive at Redis' own clock (so nodes with skewed
// clocks agree) and drops nodes silent for longer than the window.
const beatLua = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
for _, id in ipairs(dead) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
return now`

const nodesLua = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf')
if #ids == 0 then return {} end
local infos = redis.call('HMGET', KEYS[2], unpack(ids))
local out = {}
for i, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = infos[i] or ''
end
return out`

type nodeRecord struct {
	Connections int       `json:"connections"`
	StartedAt   time.Time `json:"started_at"`
}

func (b *redisBroker) Beat(ctx context.Context, n NodeInfo) error {
	info, _ := json.Marshal(nodeRecord{n.Connections, n.StartedAt})
	err := b.beat.Run(ctx, b.rdb, []string{b.hubKey("nodes"), b.hubKey("nodeinfo")},
		n.ID, info, presenceWindow.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("hub: presence beat: %w", err)
	}
	return nil
}

func (b *redisBroker) Leave(ctx context.Context, nodeID string) error {
	_, err := b.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, b.hubKey("nodes"), nodeID)
		p.HDel(ctx, b.hubKey("nodeinfo"), nodeID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("hub: presence leave: %w", err)
	}
	return nil
}

func (b *redisBroker) Nodes(ctx context.Context) ([]NodeInfo, error) {
	res, err := b.nodes.Run(ctx, b.rdb, []string{b.hubKey("nodes"), b.hubKey("nodeinfo")},
		presenceWindow.Milliseconds()).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("hub: nodes: %w", err)
	}
	out := make([]NodeInfo, 0, len(res)/2)
	for i := 0; i+1 < len(res); i += 2 {
		var rec nodeRecord
		_ = json.Unmarshal([]byte(res[i+1]), &rec)
		out = append(out, NodeInfo{ID: res[i], Connections: rec.Connections, StartedAt: rec.StartedAt})
	}
	return out, nil
}

// AddSocket queues the add for the ledger's next batched round trip and
// waits for it.
func (b *redisBroker) AddSocket(ctx context.Context, userID, member string, limit int) ([]string, error) {
	return b.ledger.add(ctx, userID, member, limit)
}

// RemoveSocket queues the removal for the ledger's next round trip; it does
// not wait for it.
func (b *redisBroker) RemoveSocket(ctx context.Context, userID, member string) error {
	return b.ledger.remove(ctx, userID, member)
}

// psLink is one pub/sub connection with the set of channels this node wants
// on it. want/unwant only edit that set; syncLoop turns the edits into
// (batched) SUBSCRIBE/UNSUBSCRIBE commands, so no registry lock is ever held
// across a Redis round trip and the last edit of a channel always wins.
type psLink struct {
	b       *redisBroker
	control bool

	mu    sync.Mutex
	ps    *redis.PubSub
	subs  map[string]*subState
	dirty map[string]struct{}
	kick  chan struct{}
}

type subState struct {
	refs      int
	ready     chan struct{} // closed when Redis confirmed the subscription
	confirmed bool
}

func newLink(b *redisBroker, control bool) *psLink {
	return &psLink{
		b: b, control: control,
		ps:    b.rdb.Subscribe(context.Background()),
		subs:  make(map[string]*subState),
		dirty: make(map[string]struct{}),
		kick:  make(chan struct{}, 1),
	}
}

func (l *psLink) want(ch string) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.subs[ch]
	if st == nil {
		st = &subState{ready: make(chan struct{})}
		l.subs[ch] = st
		l.markLocked(ch)
	}
	st.refs++
	return st.ready
}

func (l *psLink) unwant(ch string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.subs[ch]
	if st == nil {
		return
	}
	if st.refs--; st.refs <= 0 {
		delete(l.subs, ch)
		l.markLocked(ch)
	}
}

func (l *psLink) markLocked(ch string) {
	l.dirty[ch] = struct{}{}
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

func (l *psLink) confirm(ch string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.subs[ch]; st != nil && !st.confirmed {
		st.confirmed = true
		close(st.ready)
	}
}

func (l *psLink) current() *redis.PubSub {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ps
}

func (l *psLink) syncLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.kick:
		}
		l.mu.Lock()
		var sub, unsub []string
		for ch := range l.dirty {
			st := l.subs[ch]
			switch {
			case st == nil:
				unsub = append(unsub, l.b.prefix+ch)
			case !st.confirmed:
				sub = append(sub, l.b.prefix+ch)
			}
		}
		clear(l.dirty)
		ps := l.ps
		l.mu.Unlock()
		// Failures need no retry: go-redis records the wanted set before
		// writing and resubscribes all of it when the link comes back.
		for len(sub) > 0 {
			n := min(len(sub), subBatch)
			if err := ps.Subscribe(ctx, sub[:n]...); err != nil && ctx.Err() == nil {
				l.b.log.Warn("hub: subscribe failed; retried on reconnect", "err", err)
			}
			sub = sub[n:]
		}
		for len(unsub) > 0 {
			n := min(len(unsub), subBatch)
			_ = ps.Unsubscribe(ctx, unsub[:n]...)
			unsub = unsub[n:]
		}
	}
}

// rebuild replaces a link that went silent (a half-open TCP connection
// go-redis cannot see) with a fresh one carrying every wanted channel.
func (l *psLink) rebuild(ctx context.Context) {
	l.mu.Lock()
	old := l.ps
	l.ps = l.b.rdb.Subscribe(context.Background())
	all := make([]string, 0, len(l.subs))
	for ch := range l.subs {
		all = append(all, l.b.prefix+ch)
	}
	ps := l.ps
	l.mu.Unlock()
	_ = old.Close()
	for len(all) > 0 {
		n := min(len(all), subBatch)
		_ = ps.Subscribe(ctx, all[:n]...)
		all = all[n:]
	}
}

func (l *psLink) close() {
	l.mu.Lock()
	ps := l.ps
	l.mu.Unlock()
	_ = ps.Close()
}

func (l *psLink) receiveLoop(ctx context.Context, h brokerHandler) {
	// Closing the link unblocks a pending receive at once on shutdown.
	stop := context.AfterFunc(ctx, l.close)
	defer stop()
	broken := false
	lastHeard := time.Now()
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		ps := l.current()
		msg, err := ps.ReceiveTimeout(ctx, pingEvery)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if time.Since(lastHeard) > deadAfter {
					l.b.log.Warn("hub: pub/sub link silent; rebuilding", "control", l.control)
					broken = true
					lastHeard = time.Now()
					l.rebuild(ctx)
					continue
				}
				_ = ps.Ping(ctx)
				continue
			}
			if !broken {
				l.b.log.Warn("hub: pub/sub link lost", "control", l.control, "err", err)
			}
			broken = true
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, retryMax)
			continue
		}
		lastHeard = time.Now()
		backoff = 50 * time.Millisecond
		switch m := msg.(type) {
		case *redis.Message:
			h.message(strings.TrimPrefix(m.Channel, l.b.prefix), []byte(m.Payload))
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			l.confirm(strings.TrimPrefix(m.Channel, l.b.prefix))
			if broken {
				broken = false
				l.b.reconnect.Inc()
				l.b.log.Info("hub: pub/sub link back", "control", l.control)
				h.reconnected(l.control)
			}
		}
	}
}

// member names one socket in the per-user ledger.
func member(node string, socket uint64) string {
	return node + "|" + strconv.FormatUint(socket, 36)
}
