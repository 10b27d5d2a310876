package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// fanoutChannel is the channel every subscriber joins.
const fanoutChannel = "bench:fanout"

// Fanout subscribes k sockets across the nodes to one channel, publishes
// rate messages a second through POST /api/publish on node 0 for dur, and
// reports deliveries per second, publish → deliver latency and the servers'
// CPU-seconds per million deliveries; then it pushes to users' own channels.
func Fanout(ctx context.Context, o Options, k, rate int, dur time.Duration, pushes int) (*Result, error) {
	res := &Result{Scenario: fmt.Sprintf("fanout (%d subscribers, %d msg/s, %d nodes)", k, rate, len(o.Targets))}
	conns, creds, err := o.socketsFor(ctx, k, []string{"sub:bench:*"}, []string{fanoutChannel})
	if err != nil {
		return nil, err
	}
	pubCreds, err := o.Prov.Sessions(ctx, 1, 1, "service", []string{"pub:bench:*", "pub:user:*"})
	if err != nil {
		return nil, err
	}
	pubTok, err := o.mintTokens(ctx, pubCreds)
	if err != nil {
		return nil, err
	}
	bearer := "Bearer " + pubTok[0]
	pool, err := NewPool(ctx, PoolConfig{Sockets: k, PerProcess: o.PerProcess, WorkerCmd: o.WorkerCmd})
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	fmt.Fprintf(o.Progress, "opening %d subscribers...\n", k)
	opened, err := pool.Open(conns, o.Concurrency, o.Sources)
	if err != nil || opened.Failed > 0 {
		return nil, fmt.Errorf("open subscribers: %v (failed %d: %v)", err, opened.Failed, opened.Errors)
	}
	if _, err := pool.Stats(); err != nil { // reset counters
		return nil, err
	}
	sc := o.scraper()
	before, err := sc.Sample(ctx)
	if err != nil {
		return nil, err
	}
	tool0 := toolCPU()
	sent, failed := publishFor(ctx, o, bearer, rate, dur, func(i int) string { return fanoutChannel })
	time.Sleep(time.Second) // let the last deliveries land
	after, err := sc.Sample(ctx)
	if err != nil {
		return nil, err
	}
	tool := toolCPU() - tool0
	st, err := pool.Stats()
	if err != nil {
		return nil, err
	}
	b, a := Sum(before), Sum(after)
	elapsed := dur.Seconds()
	res.add("subscribers", opened.OK, "")
	res.add("messages published", sent, "")
	res.add("publish failures", failed, "")
	res.add("deliveries", st.Messages, "")
	res.add("expected deliveries", int64(sent)*int64(opened.OK), "")
	res.add("delivery rate", round(float64(st.Messages)/elapsed, 0), "/s")
	res.addLatency("publish → deliver", st.Latency)
	// The hubs' own share, per message: arrival at the node → the last
	// subscriber written (bucket upper bounds).
	for _, q := range []float64{0.5, 0.99} {
		if v, ok := HistQuantile(b.Broadcast, a.Broadcast, q); ok {
			res.add(fmt.Sprintf("hub arrival → last subscriber written p%.0f (≤)", q*100), round(v*1e3, 1), "ms")
		}
	}
	if st.Messages > 0 {
		res.add("server CPU per million deliveries", round((a.CPU-b.CPU)/float64(st.Messages)*1e6, 2), "CPU-s")
	}
	if st.Messages > 0 {
		// The tool's own cost (publisher and readers, child workers
		// included once they exit; in-process below 15,000 sockets): when
		// it nears the server's, latency includes the tool's lag.
		res.add("load tool CPU per delivery", round(tool.Seconds()/float64(st.Messages)*1e6, 2), "µs")
	}
	if lost := int64(sent)*int64(opened.OK) - st.Messages; lost > 0 {
		res.Failures = append(res.Failures, fmt.Sprintf("%d deliveries missing", lost))
	}

	if pushes > 0 {
		// Each push goes to one user's own channel and reaches that user's
		// sockets (o.PerUser of them, spread over the nodes).
		users := len(creds)
		pushRate := max(1, pushes/max(1, int(dur.Seconds())))
		n, pf := publishFor(ctx, o, bearer, pushRate, time.Duration(float64(pushes)/float64(pushRate)*float64(time.Second)),
			func(i int) string { return "user:" + creds[i%users].UserID })
		time.Sleep(time.Second)
		st, err := pool.Stats()
		if err != nil {
			return nil, err
		}
		res.add("user pushes (POST /api/publish)", n, "")
		res.add("user push failures", pf, "")
		res.add("user push deliveries", st.Messages, "")
		res.addLatency("user push → deliver", st.Latency)
	}
	return res, nil
}

// publishFor publishes rate messages a second for dur through POST
// /api/publish on node 0, each carrying its send time, and returns how many
// were accepted and refused.
func publishFor(ctx context.Context, o Options, bearer string, rate int, dur time.Duration, channel func(i int) string) (sent, failed int) {
	interval := time.Second / time.Duration(max(1, rate))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	end := time.Now().Add(dur)
	var ok, bad atomic.Int64
	var wg sync.WaitGroup
	for i := 0; time.Now().Before(end); i++ {
		select {
		case <-ctx.Done():
			return int(ok.Load()), int(bad.Load())
		case <-tick.C:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := map[string]any{"channel": channel(i), "data": map[string]int64{"t": time.Now().UnixNano()}}
			if err := o.do(ctx, http.MethodPost, o.Targets[0]+"/api/publish", bearer, body, nil); err != nil {
				bad.Add(1)
				return
			}
			ok.Add(1)
		}()
	}
	wg.Wait()
	return int(ok.Load()), int(bad.Load())
}

// toolCPU is this process's CPU time so far (user + system).
func toolCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
