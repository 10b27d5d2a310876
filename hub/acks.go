package hub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ackMux is a node's one subscription to every acknowledgement channel
// (<prefix>acks:*), shared by all the admin revocations waiting on this
// node. A subscription per revocation cost a new Redis connection and a
// SUBSCRIBE round trip on every admin call; acks are rare enough that every
// node receiving every ack costs nothing.
type ackMux struct {
	rdb     redis.UniversalClient
	pattern string

	mu      sync.Mutex
	ps      *redis.PubSub
	done    chan struct{}
	closed  bool
	waiters map[string]chan []byte
}

var errAcksClosed = errors.New("hub: acknowledgements closed (broker stopped)")

func newAckMux(rdb redis.UniversalClient, prefix string) *ackMux {
	return &ackMux{rdb: rdb, pattern: prefix + "acks:*", waiters: map[string]chan []byte{}}
}

// listen registers a waiter for channel (the full, prefixed name). The
// shared subscription is confirmed before listen returns, so an ack
// published afterwards is never missed.
func (a *ackMux) listen(ctx context.Context, channel string) (<-chan []byte, func(), error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, nil, errAcksClosed
	}
	if a.ps == nil {
		ps := a.rdb.PSubscribe(ctx, a.pattern)
		if _, err := ps.Receive(ctx); err != nil {
			_ = ps.Close()
			return nil, nil, fmt.Errorf("hub: listen for acks: %w", err)
		}
		a.ps, a.done = ps, make(chan struct{})
		go a.receive(ps, a.done)
	}
	// 64 acks: one per node of any realistic cluster; more are dropped, not
	// blocked on.
	ch := make(chan []byte, 64)
	a.waiters[channel] = ch
	var once sync.Once
	stop := func() {
		once.Do(func() {
			a.mu.Lock()
			delete(a.waiters, channel)
			a.mu.Unlock()
		})
	}
	return ch, stop, nil
}

func (a *ackMux) receive(ps *redis.PubSub, done chan struct{}) {
	defer close(done)
	for {
		m, err := ps.ReceiveMessage(context.Background())
		if err != nil {
			return // closed by close
		}
		if !strings.HasPrefix(m.Channel, strings.TrimSuffix(a.pattern, "*")) {
			continue
		}
		a.mu.Lock()
		ch := a.waiters[m.Channel]
		a.mu.Unlock()
		if ch == nil {
			continue
		}
		select {
		case ch <- []byte(m.Payload):
		default: // a waiter that no longer reads
		}
	}
}

// close ends the shared subscription; later listens fail. Idempotent.
func (a *ackMux) close() {
	a.mu.Lock()
	a.closed = true
	ps, done := a.ps, a.done
	a.ps = nil
	a.mu.Unlock()
	if ps != nil {
		_ = ps.Close()
		<-done
	}
}
