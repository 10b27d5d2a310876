package hub

import (
	"hash/maphash"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// numShards splits every index so that connects, closes and fan-outs on
// unrelated keys rarely meet on a lock (64, as centrifuge does).
const numShards = 64

// registry indexes live sockets by session, by user and by channel, each
// sharded by its key. Locks guard only map edits and snapshots: no I/O
// happens under them, and a fan-out only queues frames.
type registry struct {
	br       broker
	bcast    *broadcaster // nil: broadcasts run on the caller
	seed     maphash.Seed
	sessions [numShards]connIndex
	users    [numShards]connIndex
	channels [numShards]chanIndex
}

type connIndex struct {
	mu sync.RWMutex
	m  map[string][]*conn
}

type chanIndex struct {
	mu sync.RWMutex
	m  map[string]*chanSet
}

// chanSet is one channel's local subscribers, with a snapshot list that a
// broadcast walks (a slice, not a map iteration) and reuses until the set
// changes: a steady fan-out allocates nothing per message.
type chanSet struct {
	members map[*conn]struct{}
	list    atomic.Pointer[[]*conn] // nil after a change; rebuilt by the next broadcast
}

// snapshot returns the members as a slice. The shard lock is held (read
// or write); join and leave, which hold it for writing, drop the list.
func (s *chanSet) snapshot() []*conn {
	if l := s.list.Load(); l != nil {
		return *l
	}
	l := make([]*conn, 0, len(s.members))
	for c := range s.members {
		l = append(l, c)
	}
	s.list.Store(&l) // concurrent readers store equal lists
	return l
}

func newRegistry(br broker) *registry {
	r := &registry{br: br, seed: maphash.MakeSeed()}
	for i := range numShards {
		r.sessions[i].m = make(map[string][]*conn)
		r.users[i].m = make(map[string][]*conn)
		r.channels[i].m = make(map[string]*chanSet)
	}
	return r
}

func (r *registry) shard(key string) int {
	return int(maphash.String(r.seed, key) & (numShards - 1))
}

// userChannel is the broker channel of a user's sockets.
func userChannel(userID string) string { return "ch:user:" + userID }

// add indexes c; the returned channel closes once the node's subscription
// to c's user channel is active.
func (r *registry) add(c *conn) <-chan struct{} {
	s := &r.sessions[r.shard(c.ident.SessionID)]
	s.mu.Lock()
	s.m[c.ident.SessionID] = append(s.m[c.ident.SessionID], c)
	s.mu.Unlock()

	u := &r.users[r.shard(c.ident.UserID)]
	u.mu.Lock()
	defer u.mu.Unlock()
	list := u.m[c.ident.UserID]
	u.m[c.ident.UserID] = append(list, c)
	// The broker call is a map edit, never I/O, so it may run under the
	// lock; it keeps subscribe/unsubscribe of one user in order.
	return r.br.Subscribe(userChannel(c.ident.UserID))
}

// remove drops c from every index, leaving channels it was in.
func (r *registry) remove(c *conn) {
	s := &r.sessions[r.shard(c.ident.SessionID)]
	s.mu.Lock()
	if list := without(s.m[c.ident.SessionID], c); len(list) == 0 {
		delete(s.m, c.ident.SessionID)
	} else {
		s.m[c.ident.SessionID] = list
	}
	s.mu.Unlock()

	u := &r.users[r.shard(c.ident.UserID)]
	u.mu.Lock()
	if list := without(u.m[c.ident.UserID], c); len(list) == 0 {
		delete(u.m, c.ident.UserID)
		r.br.Unsubscribe(userChannel(c.ident.UserID))
	} else {
		u.m[c.ident.UserID] = list
	}
	u.mu.Unlock()

	for ch := range c.channels {
		r.leave(c, ch)
	}
}

func without(list []*conn, c *conn) []*conn {
	if i := slices.Index(list, c); i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	return list
}

// join adds c to channel ch; see add for the returned channel.
func (r *registry) join(c *conn, ch string) <-chan struct{} {
	sh := &r.channels[r.shard(ch)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	set := sh.m[ch]
	if set == nil {
		set = &chanSet{members: make(map[*conn]struct{})}
		sh.m[ch] = set
	}
	set.members[c] = struct{}{}
	set.list.Store(nil)
	if len(set.members) == 1 {
		return r.br.Subscribe("ch:" + ch)
	}
	// Someone else subscribed the node; ask the broker again, which only
	// bumps a count, to learn when that subscription is active.
	ready := r.br.Subscribe("ch:" + ch)
	r.br.Unsubscribe("ch:" + ch)
	return ready
}

// leave removes c from channel ch.
func (r *registry) leave(c *conn, ch string) {
	sh := &r.channels[r.shard(ch)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	set := sh.m[ch]
	if set == nil {
		return
	}
	delete(set.members, c)
	set.list.Store(nil)
	if len(set.members) == 0 {
		delete(sh.m, ch)
		r.br.Unsubscribe("ch:" + ch)
	}
}

// sessionConns returns a snapshot of the session's sockets.
func (r *registry) sessionConns(sessionID string) []*conn {
	s := &r.sessions[r.shard(sessionID)]
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.m[sessionID])
}

// userConns returns a snapshot of the user's sockets.
func (r *registry) userConns(userID string) []*conn {
	u := &r.users[r.shard(userID)]
	u.mu.RLock()
	defer u.mu.RUnlock()
	return slices.Clone(u.m[userID])
}

// toUser sends frame to every socket of userID and returns how many took it.
func (r *registry) toUser(userID string, frame []byte) int {
	u := &r.users[r.shard(userID)]
	u.mu.RLock()
	defer u.mu.RUnlock()
	return offerAll(u.m[userID], frame)
}

// toChannel sends frame to every local subscriber of ch. When the
// broadcaster runs, it takes the broadcast (and counts the deliveries in
// the messages-out metric itself) and toChannel returns 0 at once.
func (r *registry) toChannel(ch string, frame []byte) int {
	if r.bcast != nil && r.bcast.send(ch, frame) {
		return 0
	}
	return r.toChannelNow(ch, frame)
}

// toChannelNow is one broadcast pass over ch's local subscribers. The
// shard's read lock is held until every subscriber has the frame written
// or queued, so that nothing reaches a socket after its unsubscribe was
// acknowledged.
func (r *registry) toChannelNow(ch string, frame []byte) int {
	sh := &r.channels[r.shard(ch)]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	set := sh.m[ch]
	if set == nil {
		return 0
	}
	return offerAll(set.snapshot(), frame)
}

// passMin is the fewest sockets worth a goroutine of their own in a
// broadcast pass: below it, one pass on the caller is cheaper.
const passMin = 512

// offerAll is one broadcast pass: each idle socket gets frame written at
// once (see conn.offer), touching the socket once per delivery; a busy one
// has it queued. With several CPUs the pass is split over that many
// goroutines, as the flushers would; it returns when all are done.
func offerAll(conns []*conn, frame []byte) int {
	parts := min(runtime.GOMAXPROCS(0), len(conns)/passMin)
	if parts <= 1 {
		return offerPart(conns, frame)
	}
	var wg sync.WaitGroup
	var total atomic.Int64
	per := (len(conns) + parts - 1) / parts
	for i := per; i < len(conns); i += per {
		wg.Go(func() { total.Add(int64(offerPart(conns[i:min(i+per, len(conns))], frame))) })
	}
	n := offerPart(conns[:per], frame)
	wg.Wait()
	return n + int(total.Load())
}

// passYield is how many sockets a pass writes between yields of its CPU
// (~2 ms at the kernel's ~7 µs per write): a revocation or a handshake
// waiting for the core runs within that, not after the runtime's 10 ms
// forced preemption.
const passYield = 256

func offerPart(conns []*conn, frame []byte) int {
	n := 0
	for i, c := range conns {
		if c.offer(frame) {
			n++
		}
		if i%passYield == passYield-1 {
			runtime.Gosched()
		}
	}
	return n
}

// sessionIDsIn lists the sessions with a live socket here in session
// shards [lo, hi).
func (r *registry) sessionIDsIn(lo, hi int) []string {
	var ids []string
	for i := lo; i < hi; i++ {
		s := &r.sessions[i]
		s.mu.RLock()
		for id := range s.m {
			ids = append(ids, id)
		}
		s.mu.RUnlock()
	}
	return ids
}

// all returns a snapshot of every socket.
func (r *registry) all() []*conn { return r.allIn(0, numShards) }

// allIn returns a snapshot of the sockets in session shards [lo, hi).
func (r *registry) allIn(lo, hi int) []*conn {
	var out []*conn
	for i := lo; i < hi; i++ {
		s := &r.sessions[i]
		s.mu.RLock()
		for _, list := range s.m {
			out = append(out, list...)
		}
		s.mu.RUnlock()
	}
	return out
}
