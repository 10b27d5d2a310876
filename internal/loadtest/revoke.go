package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// closeWatch collects close events by session id.
type closeWatch struct {
	mu      sync.Mutex
	armed   bool
	closes  map[string][]time.Time
	seen    map[string][]time.Time // when the reader saw each close
	codes   map[string]int
	waiters map[string]chan struct{}
	want    map[string]int
	bg      map[string]bool
	bgHit   []string
}

func newCloseWatch() *closeWatch {
	return &closeWatch{closes: map[string][]time.Time{}, seen: map[string][]time.Time{}, codes: map[string]int{}, waiters: map[string]chan struct{}{}, want: map[string]int{}, bg: map[string]bool{}}
}

func (w *closeWatch) onClose(sid string, code int, at, seen time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.armed {
		return
	}
	if w.bg[sid] {
		w.bgHit = append(w.bgHit, fmt.Sprintf("%s closed with %d", sid, code))
		return
	}
	w.closes[sid] = append(w.closes[sid], at)
	w.seen[sid] = append(w.seen[sid], seen)
	w.codes[fmt.Sprint(code)]++
	if ch, ok := w.waiters[sid]; ok && len(w.closes[sid]) >= w.want[sid] {
		close(ch)
		delete(w.waiters, sid)
	}
}

// expect returns a channel closed once sid has had n sockets closed.
func (w *closeWatch) expect(sid string, n int) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := make(chan struct{})
	if len(w.closes[sid]) >= n {
		close(ch)
		return ch
	}
	w.waiters[sid], w.want[sid] = ch, n
	return ch
}

func (w *closeWatch) latencies(sid string, t0 time.Time) Durations {
	return w.since(w.closes, sid, t0)
}

// seenLatencies is latencies by when the readers saw the closes (the load
// tool's own delay included).
func (w *closeWatch) seenLatencies(sid string, t0 time.Time) Durations {
	return w.since(w.seen, sid, t0)
}

// since is how long after t0 each of sid's times in byID came.
func (w *closeWatch) since(byID map[string][]time.Time, sid string, t0 time.Time) Durations {
	w.mu.Lock()
	defer w.mu.Unlock()
	var d Durations
	for _, at := range byID[sid] {
		d = append(d, at.Sub(t0))
	}
	return d
}

// Revoke holds n background sockets over every node, then revokes sessions
// one at a time, users one at a time (global logout) and a burst of
// sessions at once, all through node 0's admin API, and reports revoke →
// close as the clients saw it. No background socket may close.
func Revoke(ctx context.Context, o Options, n, revokes, users, burst int) (*Result, error) {
	res := &Result{Scenario: fmt.Sprintf("revoke (background %d sockets, %d nodes)", n, len(o.Targets))}
	nodes := len(o.Targets)
	admin, err := o.Prov.Sessions(ctx, 1, 1, "service", []string{"admin"})
	if err != nil {
		return nil, fmt.Errorf("provision admin: %w", err)
	}
	adminAuth := "Session " + admin[0].Token

	bgConns, bgCreds, err := o.socketsFor(ctx, n, nil, nil)
	if err != nil {
		return nil, err
	}
	// Targets: sessions with one socket on every node (revoked one by one
	// and in a burst), and users with one session per node.
	tCreds, err := o.Prov.Sessions(ctx, revokes+burst, 1, "service", nil)
	if err != nil {
		return nil, err
	}
	uCreds, err := o.Prov.Sessions(ctx, users, nodes, "service", nil)
	if err != nil {
		return nil, err
	}
	all := append(append([]Cred{}, tCreds...), uCreds...)
	toks, err := o.mintTokens(ctx, all)
	if err != nil {
		return nil, err
	}
	var conns []Conn
	for i, c := range tCreds {
		for k := 0; k < nodes; k++ {
			conns = append(conns, Conn{URL: wsURL(o.Targets[k]), Token: toks[i], SessionID: c.SessionID})
		}
	}
	for i, c := range uCreds {
		k := i % nodes // the user's i-th session lives on node i mod nodes
		conns = append(conns, Conn{URL: wsURL(o.Targets[k]), Token: toks[len(tCreds)+i], SessionID: c.SessionID})
	}
	watch := newCloseWatch()
	for _, c := range bgCreds {
		watch.bg[c.SessionID] = true
	}
	pool, err := NewPool(ctx, PoolConfig{Sockets: n + len(conns), PerProcess: o.PerProcess, WorkerCmd: o.WorkerCmd, OnClose: watch.onClose})
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	defer func() { watch.mu.Lock(); watch.armed = false; watch.mu.Unlock() }()
	fmt.Fprintf(o.Progress, "opening %d background and %d target sockets...\n", n, len(conns))
	if r, err := pool.Open(append(bgConns, conns...), o.Concurrency, o.Sources); err != nil || r.Failed > 0 {
		return nil, fmt.Errorf("open sockets: %v (failed %d: %v)", err, r.Failed, r.Errors)
	}
	watch.mu.Lock()
	watch.armed = true
	watch.mu.Unlock()
	sc := o.scraper()
	hubBefore, err := sc.Sample(ctx)
	if err != nil {
		return nil, err
	}
	// hubShare adds the hubs' own view of a phase: revocation issued_at →
	// close frame sent, from their histograms (bucket upper bounds).
	hubShare := func(label string) {
		now, err := sc.Sample(ctx)
		if err != nil {
			return
		}
		b, a := Sum(hubBefore).RevokeClose, Sum(now).RevokeClose
		for _, q := range []float64{0.5, 0.99} {
			if v, ok := HistQuantile(b, a, q); ok {
				res.add(fmt.Sprintf("%s: hub issued → close sent p%g ≤", label, q*100), v*1000, "ms")
			}
		}
		hubBefore = now
	}

	const wait = 5 * time.Second // past the sweep bound this is a failure, not a slow close
	var one, oneSeen Durations
	p := &progress{w: o.Progress, label: "sessions", total: revokes}
	for i := 0; i < revokes; i++ {
		sid := tCreds[i].SessionID
		done := watch.expect(sid, nodes)
		t0 := time.Now()
		if err := o.do(ctx, http.MethodDelete, o.Targets[0]+"/admin/sessions/"+sid, adminAuth, nil, nil); err != nil {
			return nil, err
		}
		select {
		case <-done:
		case <-time.After(wait):
			res.Failures = append(res.Failures, fmt.Sprintf("session %s: sockets still open %s after revocation", sid, wait))
		}
		one = append(one, watch.latencies(sid, t0)...)
		oneSeen = append(oneSeen, watch.seenLatencies(sid, t0)...)
		p.set(i + 1)
	}
	res.add("sessions revoked one at a time", revokes, "")
	// Timed to the close frame's arrival at the client socket; the second
	// figure adds the load tool's own delay (its core, shared with Redis
	// and Postgres, and coder/websocket's close handshake before Read
	// returns).
	res.addLatency("revoke → close (session, all nodes)", one)
	res.add("  same, seen by the client process p99", ms(oneSeen.Quantile(0.99)), "ms")
	hubShare("sessions")

	var userLat, userAll Durations
	byUser := map[string][]Cred{}
	var order []string
	for _, c := range uCreds {
		if _, ok := byUser[c.UserID]; !ok {
			order = append(order, c.UserID)
		}
		byUser[c.UserID] = append(byUser[c.UserID], c)
	}
	p = &progress{w: o.Progress, label: "users", total: len(order)}
	for i, uid := range order {
		var dones []<-chan struct{}
		for _, c := range byUser[uid] {
			dones = append(dones, watch.expect(c.SessionID, 1))
		}
		t0 := time.Now()
		if err := o.do(ctx, http.MethodPost, o.Targets[0]+"/admin/users/"+uid+"/logout-all", adminAuth, nil, nil); err != nil {
			return nil, err
		}
		var last Durations
		for j, d := range dones {
			select {
			case <-d:
				l := watch.latencies(byUser[uid][j].SessionID, t0)
				last = append(last, l...)
			case <-time.After(wait):
				res.Failures = append(res.Failures, fmt.Sprintf("user %s: a socket still open %s after global logout", uid, wait))
			}
		}
		userLat = append(userLat, last...)
		userAll = append(userAll, last.Max())
		p.set(i + 1)
	}
	res.add("users logged out everywhere", len(order), "")
	res.addLatency("global logout → socket closed", userLat)
	res.addLatency("global logout → every socket closed", userAll)
	hubShare("users")

	if burst > 0 {
		var dones []<-chan struct{}
		for _, c := range tCreds[revokes:] {
			dones = append(dones, watch.expect(c.SessionID, nodes))
		}
		fmt.Fprintf(o.Progress, "revoking %d sessions at once...\n", burst)
		t0 := time.Now()
		sem := make(chan struct{}, 64)
		var wg sync.WaitGroup
		for _, c := range tCreds[revokes:] {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				_ = o.do(ctx, http.MethodDelete, o.Targets[0]+"/admin/sessions/"+c.SessionID, adminAuth, nil, nil)
			}()
		}
		timeout := time.After(10 * time.Second)
		closed := 0
	wait:
		for _, d := range dones {
			select {
			case <-d:
				closed++
			case <-timeout:
				break wait
			}
		}
		wg.Wait()
		var lastClose time.Time
		watch.mu.Lock()
		for _, c := range tCreds[revokes:] {
			for _, at := range watch.closes[c.SessionID] {
				if at.After(lastClose) {
					lastClose = at
				}
			}
		}
		watch.mu.Unlock()
		res.add("burst sessions revoked", burst, "")
		res.add("burst: all sockets closed after", ms(lastClose.Sub(t0)), "ms")
		hubShare("burst")
		if closed < burst {
			res.Failures = append(res.Failures, fmt.Sprintf("burst: only %d of %d sessions had every socket closed within 10 s", closed, burst))
		}
	}
	watch.mu.Lock()
	res.add("close codes", fmt.Sprint(watch.codes), "")
	if len(watch.bgHit) > 0 {
		res.Failures = append(res.Failures, fmt.Sprintf("%d background sockets closed, e.g. %s", len(watch.bgHit), watch.bgHit[0]))
	}
	watch.mu.Unlock()
	res.add("background sockets closed", len(watch.bgHit), "")
	return res, nil
}
