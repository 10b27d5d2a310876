package hub

import (
	"context"
	"slices"
	"sync"
	"time"
)

// NodeInfo is one live node as /admin/stats shows it.
type NodeInfo struct {
	ID          string    `json:"id"`
	Connections int       `json:"connections"`
	StartedAt   time.Time `json:"started_at"`
}

// broker is the cluster fabric: pub/sub between nodes, node presence, and
// the cluster-wide ledger of sockets per user. Channel names are logical;
// the broker adds the prefix. redisBroker is the production one,
// memoryBroker serves a single node.
type broker interface {
	// Run receives until ctx ends, handing every message to h.
	Run(ctx context.Context, h brokerHandler) error
	// Publish sends payload to every node subscribed to channel.
	Publish(ctx context.Context, channel string, payload []byte) error
	// Subscribe adds channel to this node's subscriptions and returns a
	// channel closed once the subscription is active. It never blocks, so
	// it may be called under registry locks; calls for one channel take
	// effect in order.
	Subscribe(channel string) <-chan struct{}
	// Unsubscribe drops channel; like Subscribe it never blocks.
	Unsubscribe(channel string)
	// Listen delivers the messages of one channel (acks) from when it
	// returns until stop; the Redis broker serves every Listen from one
	// shared pattern subscription.
	Listen(ctx context.Context, channel string) (msgs <-chan []byte, stop func(), err error)
	// Beat records this node as alive with its figures.
	Beat(ctx context.Context, n NodeInfo) error
	// Leave removes this node from presence at once.
	Leave(ctx context.Context, nodeID string) error
	// Nodes lists the nodes that beat within the presence window.
	Nodes(ctx context.Context) ([]NodeInfo, error)
	// AddSocket records member (node|socket) for userID and returns the
	// members to evict, oldest first, so that at most limit remain.
	AddSocket(ctx context.Context, userID, member string, limit int) ([]string, error)
	// RemoveSocket forgets member.
	RemoveSocket(ctx context.Context, userID, member string) error
}

// brokerHandler receives what a broker's Run delivers.
type brokerHandler interface {
	// message is one pub/sub message on a logical channel. It runs on the
	// broker's receive goroutine and must not block on I/O.
	message(channel string, payload []byte)
	// reconnected is called after a pub/sub link came back; control says it
	// was the link carrying revocations (messages may have been lost).
	reconnected(control bool)
}

// presenceWindow is how long a silent node stays listed (API.md: 15 s).
const presenceWindow = 15 * time.Second

// memoryBroker is the single-node broker: delivery is a function call.
type memoryBroker struct {
	mu        sync.Mutex
	h         brokerHandler
	subs      map[string]int
	listeners map[string][]chan []byte
	node      NodeInfo
	sockets   map[string][]string // user → members, oldest first
}

// newMemoryBroker delivers to h from the start, not only once Run is
// running: a socket let in before the Run goroutine was scheduled would
// otherwise lose what is published to it.
func newMemoryBroker(h brokerHandler) *memoryBroker {
	return &memoryBroker{
		h:         h,
		subs:      make(map[string]int),
		listeners: make(map[string][]chan []byte),
		sockets:   make(map[string][]string),
	}
}

func (m *memoryBroker) Run(ctx context.Context, h brokerHandler) error {
	m.mu.Lock()
	m.h = h
	m.mu.Unlock()
	<-ctx.Done()
	m.mu.Lock()
	m.h = nil
	m.mu.Unlock()
	return nil
}

func (m *memoryBroker) Publish(_ context.Context, channel string, payload []byte) error {
	m.mu.Lock()
	h := m.h
	_, subscribed := m.subs[channel]
	ls := slices.Clone(m.listeners[channel])
	m.mu.Unlock()
	for _, l := range ls {
		select {
		case l <- payload:
		default: // a listener that fell behind loses acks, like pub/sub
		}
	}
	if h != nil && subscribed {
		h.message(channel, payload)
	}
	return nil
}

func closedChan() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func (m *memoryBroker) Subscribe(channel string) <-chan struct{} {
	m.mu.Lock()
	m.subs[channel]++
	m.mu.Unlock()
	return closedChan()
}

func (m *memoryBroker) Unsubscribe(channel string) {
	m.mu.Lock()
	if m.subs[channel]--; m.subs[channel] <= 0 {
		delete(m.subs, channel)
	}
	m.mu.Unlock()
}

func (m *memoryBroker) Listen(_ context.Context, channel string) (<-chan []byte, func(), error) {
	c := make(chan []byte, 64)
	m.mu.Lock()
	m.listeners[channel] = append(m.listeners[channel], c)
	m.mu.Unlock()
	stop := func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		ls := m.listeners[channel]
		if i := slices.Index(ls, c); i >= 0 {
			ls = slices.Delete(ls, i, i+1)
		}
		if len(ls) == 0 {
			delete(m.listeners, channel)
		} else {
			m.listeners[channel] = ls
		}
	}
	return c, stop, nil
}

func (m *memoryBroker) Beat(_ context.Context, n NodeInfo) error {
	m.mu.Lock()
	m.node = n
	m.mu.Unlock()
	return nil
}

func (m *memoryBroker) Leave(context.Context, string) error {
	m.mu.Lock()
	m.node = NodeInfo{}
	m.mu.Unlock()
	return nil
}

func (m *memoryBroker) Nodes(context.Context) ([]NodeInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.node.ID == "" {
		return []NodeInfo{}, nil
	}
	return []NodeInfo{m.node}, nil
}

func (m *memoryBroker) AddSocket(_ context.Context, userID, member string, limit int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	list := append(m.sockets[userID], member)
	var evict []string
	if over := len(list) - limit; over > 0 {
		evict = slices.Clone(list[:over])
		list = slices.Delete(list, 0, over)
	}
	m.sockets[userID] = list
	return evict, nil
}

func (m *memoryBroker) RemoveSocket(_ context.Context, userID, member string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	list := m.sockets[userID]
	if i := slices.Index(list, member); i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		delete(m.sockets, userID)
	} else {
		m.sockets[userID] = list
	}
	return nil
}
