package hub

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// TestBroadcasterBackpressure: past maxQueuedBytes waiting, send blocks its
// caller (the broker's receive loop) until a pass takes the queue, instead
// of growing the node's memory; when the broadcaster stops, a blocked send
// returns false and its caller broadcasts itself.
func TestBroadcasterBackpressure(t *testing.T) {
	t.Parallel()
	b := newBroadcaster(newRegistry(newMemoryBroker(nil)), prometheus.NewCounter(prometheus.CounterOpts{Name: "x"}),
		prometheus.NewHistogram(prometheus.HistogramOpts{Name: "y"}))
	b.mu.Lock()
	b.running = true // as run does, without taking jobs yet
	b.mu.Unlock()
	big := make([]byte, maxQueuedBytes/2+1)
	require.True(t, b.send("room:a", big), "the first frames always queue")
	sent := make(chan bool, 1)
	go func() { sent <- b.send("room:a", big) }()
	select {
	case <-sent:
		t.Fatal("send returned with the queue over its cap")
	case <-time.After(100 * time.Millisecond):
	}

	// run takes the queue (a pass over a channel nobody holds): the
	// blocked send goes through.
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { b.run(ctx); close(stopped) }()
	require.True(t, <-sent)

	// Stopped with a full queue: a waiting send gives up with false.
	cancel()
	<-stopped
	b.mu.Lock()
	b.running, b.queued = true, maxQueuedBytes
	b.mu.Unlock()
	go func() { sent <- b.send("room:a", big) }()
	time.Sleep(20 * time.Millisecond)
	b.mu.Lock()
	b.running = false
	b.room.Broadcast()
	b.mu.Unlock()
	require.False(t, <-sent)
}
