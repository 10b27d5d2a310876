package hub

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// passGather is the most bytes of consecutive messages to one channel that
// one broadcast pass sends together (one write per socket).
const passGather = 16 << 10

// maxQueuedBytes bounds the frames waiting for a pass. Past it send blocks
// its caller (the broker's receive loop), as a broadcast run on the caller
// did: Redis then buffers, up to its pub/sub output limit, instead of this
// node's memory growing when passes fall behind.
const maxQueuedBytes = 32 << 20

// broadcaster runs channel broadcasts off the broker's receive goroutine:
// message hands it the channel and the encoded frame, and one goroutine
// makes a pass over the channel's subscribers per message (registry
// offerAll: each idle socket is written at once, one visit per socket, no
// per-socket hand-off). When messages arrive faster than passes end, the
// ones waiting for the same channel are sent together, in order, as one
// buffer built once: a backlog costs one write per socket for all of them,
// not one per message. Until Run starts it (and after it stops), a
// broadcast runs on the caller.
type broadcaster struct {
	reg  *registry
	out  prometheus.Counter
	took prometheus.Observer // arrival → end of the pass, per message

	mu      sync.Mutex
	room    sync.Cond // signalled when queued shrinks or running ends
	wake    chan struct{}
	running bool
	busy    bool
	jobs    []bjob
	queued  int // bytes of jobs' frames
}

type bjob struct {
	channel string
	frame   []byte
	at      int64 // arrival, unix ns
}

func newBroadcaster(reg *registry, out prometheus.Counter, took prometheus.Observer) *broadcaster {
	b := &broadcaster{reg: reg, out: out, took: took, wake: make(chan struct{}, 1)}
	b.room.L = &b.mu
	return b
}

// send hands a broadcast to the running broadcaster; false means none runs
// (the caller broadcasts itself).
func (b *broadcaster) send(channel string, frame []byte) bool {
	at := time.Now().UnixNano()
	b.mu.Lock()
	for b.running && b.queued > 0 && b.queued+len(frame) > maxQueuedBytes {
		b.room.Wait()
	}
	if !b.running {
		b.mu.Unlock()
		return false
	}
	b.jobs = append(b.jobs, bjob{channel, frame, at})
	b.queued += len(frame)
	first := len(b.jobs) == 1
	b.mu.Unlock()
	if first {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// idle reports whether no broadcast waits or runs (benchmarks).
func (b *broadcaster) idle() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.jobs) == 0 && !b.busy
}

// run broadcasts until ctx ends; what is still waiting then is sent before
// it returns.
func (b *broadcaster) run(ctx context.Context) {
	b.mu.Lock()
	b.running = true
	b.mu.Unlock()
	var jobs []bjob
	for {
		select {
		case <-ctx.Done():
		case <-b.wake:
		}
		b.mu.Lock()
		stop := ctx.Err() != nil
		if stop {
			b.running = false
		}
		jobs, b.jobs = b.jobs, jobs[:0]
		b.queued = 0
		b.busy = len(jobs) > 0
		b.room.Broadcast()
		b.mu.Unlock()
		b.pass(jobs)
		clear(jobs)
		if stop {
			return
		}
		b.mu.Lock()
		b.busy = false
		more := len(b.jobs) > 0
		b.mu.Unlock()
		if more {
			select {
			case b.wake <- struct{}{}:
			default:
			}
		}
	}
}

// pass sends jobs in order, consecutive ones to the same channel together.
func (b *broadcaster) pass(jobs []bjob) {
	for i := 0; i < len(jobs); {
		j, size := i+1, len(jobs[i].frame)
		for j < len(jobs) && jobs[j].channel == jobs[i].channel && size+len(jobs[j].frame) <= passGather {
			size += len(jobs[j].frame)
			j++
		}
		frame := jobs[i].frame
		if j-i > 1 {
			frame = make([]byte, 0, size)
			for _, jb := range jobs[i:j] {
				frame = append(frame, jb.frame...)
			}
		}
		b.out.Add(float64(b.reg.toChannelNow(jobs[i].channel, frame) * (j - i)))
		done := time.Now().UnixNano()
		for _, jb := range jobs[i:j] {
			b.took.Observe(float64(done-jb.at) / 1e9)
		}
		i = j
	}
}
