package hub

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sessionhub/sessionhub/internal/testenv"
)

// BenchmarkRevoke measures revoke → close as a client sees it, across three
// in-process nodes on one Redis, with HUB_BENCH_SOCKETS (default 10000)
// background sockets spread over the nodes by client processes. A
// revocation is published as sessions publishes it (PUBLISH on
// <prefix>revocations); the clock runs from just before the PUBLISH to the
// close frame read by the target's client. It reports:
//   - session-p50/p99/max-ms: one session revoked at a time (4001), the
//     socket on each node in turn (HUB_BENCH_REVOKES, default 300);
//   - logout-p50/p99-ms: a user with a socket on every node logged out
//     everywhere (4002), until the last of the three is closed (100 runs);
//   - burst-ms: 1,000 sessions revoked back to back, until all are closed.
//
// It fails if a background socket was closed. Run with -benchtime=1x.
func BenchmarkRevoke(b *testing.B) {
	background := envInt("HUB_BENCH_SOCKETS", 10000)
	revokes := envInt("HUB_BENCH_REVOKES", 300)
	const logouts, burst = 100, 1000
	for range b.N {
		rdb, prefix := testenv.Redis(b)
		auth := newBenchAuth(rdb, prefix)
		var nodes []*node
		for _, id := range []string{"A", "B", "C"} {
			nodes = append(nodes, startNode(b, auth, rdb, prefix, func(c *Config) {
				c.NodeID, c.Heartbeat = id, time.Hour
			}))
		}
		per := background / len(nodes)
		var bgs []*loadClients
		for i, n := range nodes {
			lc := clientProcsFrom(b, n, 1_000_000+i*per, per, "")
			lc.open()
			bgs = append(bgs, lc)
		}
		connections := func() int {
			t := 0
			for _, n := range nodes {
				t += n.h.Connections()
			}
			return t
		}
		revoke := func(ev map[string]any) {
			ev["issued_at"] = time.Now().UTC().Format(time.RFC3339Nano)
			p, _ := json.Marshal(ev)
			if err := rdb.Publish(context.Background(), prefix+"revocations", p).Err(); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()

		// One session at a time.
		var single []time.Duration
		targets := dialTargets(b, nodes, revokes, func(i int) (string, string) {
			return fmt.Sprintf("tu%d", i), fmt.Sprintf("ts%d", i)
		})
		for i, c := range targets {
			t0 := time.Now()
			revoke(map[string]any{"kind": "session", "session_id": fmt.Sprintf("ts%d", i), "user_id": fmt.Sprintf("tu%d", i), "reason": "logout"})
			expectClose(b, c, uint16(StatusSessionRevoked))
			single = append(single, time.Since(t0))
		}

		// Global logout of users with a socket on every node.
		var everywhere []time.Duration
		for i := range logouts {
			user := fmt.Sprintf("lu%d", i)
			socks := dialTargets(b, nodes, len(nodes), func(j int) (string, string) { return user, fmt.Sprintf("%s-s%d", user, j) })
			var wg sync.WaitGroup
			t0 := time.Now()
			for _, c := range socks {
				wg.Add(1)
				go func() { defer wg.Done(); expectClose(b, c, uint16(StatusLoggedOut)) }()
			}
			revoke(map[string]any{"kind": "user", "user_id": user, "reason": "logout_all"})
			wg.Wait()
			everywhere = append(everywhere, time.Since(t0))
		}

		// A burst of session revocations.
		targets = dialTargets(b, nodes, burst, func(i int) (string, string) {
			return fmt.Sprintf("bu%d", i), fmt.Sprintf("bs%d", i)
		})
		var wg sync.WaitGroup
		for _, c := range targets {
			wg.Add(1)
			go func() { defer wg.Done(); expectClose(b, c, uint16(StatusSessionRevoked)) }()
		}
		t0 := time.Now()
		pipe := rdb.Pipeline()
		for i := range burst {
			p, _ := json.Marshal(map[string]any{"kind": "session", "session_id": fmt.Sprintf("bs%d", i),
				"user_id": fmt.Sprintf("bu%d", i), "reason": "revoked", "issued_at": time.Now().UTC().Format(time.RFC3339Nano)})
			pipe.Publish(context.Background(), prefix+"revocations", p)
		}
		if _, err := pipe.Exec(context.Background()); err != nil {
			b.Fatal(err)
		}
		wg.Wait()
		burstTook := time.Since(t0)
		b.StopTimer()

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for connections() != per*len(nodes) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if got := connections(); got != per*len(nodes) {
			b.Fatalf("%d sockets open, want the %d background ones", got, per*len(nodes))
		}
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(quantile(single, 0.50)), "session-p50-ms")
		b.ReportMetric(ms(quantile(single, 0.99)), "session-p99-ms")
		b.ReportMetric(ms(quantile(single, 1)), "session-max-ms")
		b.ReportMetric(ms(quantile(everywhere, 0.50)), "logout-p50-ms")
		b.ReportMetric(ms(quantile(everywhere, 0.99)), "logout-p99-ms")
		b.ReportMetric(ms(burstTook), "burst-ms")
		for _, lc := range bgs {
			lc.stop()
		}
	}
}

// dialTargets opens k sockets, the i-th on node i%len(nodes) for
// ident(i) = (user, session), each past its welcome.
func dialTargets(b *testing.B, nodes []*node, k int, ident func(i int) (string, string)) []*rawClient {
	out := make([]*rawClient, k)
	var wg sync.WaitGroup
	errs := make(chan error, k)
	sem := make(chan struct{}, 32)
	for i := range k {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			u, s := ident(i)
			c, err := rawDial(nodes[i%len(nodes)].wsURL(), benchTokenFor(u, s))
			if err != nil {
				errs <- err
				return
			}
			out[i] = c
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		for _, c := range out {
			c.nc.Close()
		}
	})
	return out
}

// expectClose reads the target's next frame, which must be a close frame
// with code.
func expectClose(b *testing.B, c *rawClient, code uint16) {
	op, p, err := c.readFrameOp()
	if err != nil || op != 0x8 || len(p) < 2 || binary.BigEndian.Uint16(p) != code {
		b.Errorf("want close %d, got op %d %q %v", code, op, p, err)
	}
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}
