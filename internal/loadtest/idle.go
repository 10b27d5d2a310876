package loadtest

import (
	"context"
	"fmt"
	"time"
)

// Idle opens n authenticated sockets, holds them, and reports the servers'
// memory and goroutines per socket, connects per second, handshake latency
// and server CPU per connect.
func Idle(ctx context.Context, o Options, n int, hold time.Duration) (*Result, error) {
	res := &Result{Scenario: fmt.Sprintf("idle %d", n)}
	conns, _, err := o.socketsFor(ctx, n, nil, nil)
	if err != nil {
		return nil, err
	}
	pool, err := NewPool(ctx, PoolConfig{Sockets: n, PerProcess: o.PerProcess, WorkerCmd: o.WorkerCmd})
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	sc := o.scraper()
	if err := sc.GC(ctx); err != nil {
		return nil, err
	}
	before, err := sc.Sample(ctx)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Progress, "opening %d sockets over %d node(s)...\n", n, len(o.Targets))
	opened, err := pool.Open(conns, o.Concurrency, o.Sources)
	if err != nil {
		return nil, err
	}
	if opened.OK == 0 {
		return nil, fmt.Errorf("%w: %v", errNoSockets, opened.Errors)
	}
	afterConnect, err := sc.Sample(ctx)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Progress, "holding for %s...\n", hold)
	select {
	case <-time.After(hold):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := sc.GC(ctx); err != nil {
		return nil, err
	}
	after, err := sc.Sample(ctx)
	if err != nil {
		return nil, err
	}
	b, ac, a := Sum(before), Sum(afterConnect), Sum(after)
	ok := float64(opened.OK)
	res.add("sockets opened", opened.OK, "")
	res.add("sockets failed", opened.Failed, "")
	res.add("connects", round(ok/opened.Elapsed.Seconds(), 0), "/s")
	res.add("connect wall time", round(opened.Elapsed.Seconds(), 2), "s")
	res.addLatency("handshake", opened.Handshake)
	res.add("server CPU per connect", round((ac.CPU-b.CPU)/ok*1e6, 1), "µs")
	res.add("server RSS before", round(b.RSS/(1<<20), 1), "MiB")
	res.add("server RSS after", round(a.RSS/(1<<20), 1), "MiB")
	res.add("memory per idle socket", round((a.RSS-b.RSS)/ok/1024, 2), "KiB")
	res.add("goroutines per socket", round((a.Goroutines-b.Goroutines)/ok, 2), "")
	res.add("server connections gauge", a.Conns, "")
	if opened.Failed > 0 {
		res.Failures = append(res.Failures, fmt.Sprintf("%d sockets failed to open: %v", opened.Failed, opened.Errors))
	}
	st, err := pool.Stats()
	if err == nil && st.Open != opened.OK {
		res.Failures = append(res.Failures, fmt.Sprintf("%d of %d sockets closed while idle (codes %v)", opened.OK-st.Open, opened.OK, st.Codes))
	}
	return res, nil
}
