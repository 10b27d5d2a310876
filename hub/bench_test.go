package hub

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessionhub/sessionhub/internal/testenv"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchNode is a hub on the real Redis accepting benchToken tokens, with
// production's per-handshake costs (see benchAuth).
func benchNode(b *testing.B) *node {
	rdb, prefix := testenv.Redis(b)
	// Raw load clients answer no pings: no heartbeat during a run.
	return startNode(b, newBenchAuth(rdb, prefix), rdb, prefix, func(c *Config) { c.Heartbeat = time.Hour })
}

// loadClients are load-client processes (this test binary in client mode).
type loadClients struct {
	b      *testing.B
	stdins []io.WriteCloser
	outs   []*bufio.Reader
	procs  []*exec.Cmd
}

// clientProcs starts load-client processes that will hold total sockets,
// at most perProc each (the file limit); they mint their tokens and wait
// for open.
func clientProcs(b *testing.B, n *node, total int, channel string) *loadClients {
	return clientProcsFrom(b, n, 0, total, channel)
}

// clientProcsFrom is clientProcs for tokens first, first+1, ...
func clientProcsFrom(b *testing.B, n *node, first, total int, channel string) *loadClients {
	const perProc = 9000
	lc := &loadClients{b: b}
	for base := 0; base < total; base += perProc {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		if cpus := os.Getenv("HUB_BENCH_CLIENT_CPUS"); cpus != "" {
			// Pin the load elsewhere than the server (run the server under
			// taskset too), so that server CPU is not stolen by clients.
			cmd = exec.Command("taskset", "-c", cpus, os.Args[0], "-test.run=^$")
		}
		cmd.Env = append(os.Environ(), "HUB_BENCH_CLIENT=1", "HUB_BENCH_URL="+n.wsURL(),
			"HUB_BENCH_N="+strconv.Itoa(min(perProc, total-base)), "HUB_BENCH_BASE="+strconv.Itoa(first+base),
			"HUB_BENCH_CHANNEL="+channel)
		in, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		lc.procs, lc.stdins, lc.outs = append(lc.procs, cmd), append(lc.stdins, in), append(lc.outs, bufio.NewReader(out))
	}
	lc.expect("minted")
	return lc
}

func (lc *loadClients) expect(word string) {
	for _, out := range lc.outs {
		line, err := out.ReadString('\n')
		if err != nil || strings.TrimSpace(line) != word {
			lc.b.Fatalf("client process: want %q, got %q %v", word, line, err)
		}
	}
}

// open lets every process dial and returns once all sockets are open.
func (lc *loadClients) open() {
	for _, in := range lc.stdins {
		if _, err := io.WriteString(in, "go\n"); err != nil {
			lc.b.Fatal(err)
		}
	}
	lc.expect("ready")
}

// stop closes every socket and waits for the processes.
func (lc *loadClients) stop() {
	for _, in := range lc.stdins {
		_ = in.Close()
	}
	for _, p := range lc.procs {
		_ = p.Wait()
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

type memSnap struct {
	heap, stack, rss int64
	goroutines       int
}

func snapshot() memSnap {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSnap{int64(ms.HeapInuse), int64(ms.StackInuse), rssBytes(), runtime.NumGoroutine()}
}

// BenchmarkIdleSockets opens HUB_BENCH_SOCKETS (default 2000) idle sockets
// from separate client processes and reports the server's cost per socket:
// heap+stack and RSS after a forced GC, goroutines, and server CPU per
// connect (handshake, token check, liveness read, Redis ledger, user
// channel subscription). Run with -benchtime=1x.
func BenchmarkIdleSockets(b *testing.B) {
	total := envInt("HUB_BENCH_SOCKETS", 2000)
	for range b.N {
		n := benchNode(b)
		lc := clientProcs(b, n, total, "")
		before := snapshot()
		cpu0, t0 := cpuTime(), time.Now()
		lc.open()
		for n.h.Connections() < total {
			time.Sleep(10 * time.Millisecond)
		}
		connectCPU, connectWall := cpuTime()-cpu0, time.Since(t0)
		time.Sleep(time.Second) // let handshake garbage settle
		after := snapshot()
		per := func(a, b int64) float64 { return float64(a-b) / float64(total) }
		b.ReportMetric(per(after.heap+after.stack, before.heap+before.stack), "heap+stack-B/socket")
		b.ReportMetric(per(after.rss, before.rss), "RSS-B/socket")
		b.ReportMetric(float64(after.goroutines-before.goroutines)/float64(total), "goroutines/socket")
		b.ReportMetric(float64(connectCPU.Microseconds())/float64(total), "server-CPU-µs/connect")
		b.ReportMetric(float64(total)/connectWall.Seconds(), "connects/s")
		cpu1 := cpuTime()
		lc.stop()
		for n.h.Connections() > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // batched ledger removals
		b.ReportMetric(float64((cpuTime()-cpu1).Microseconds())/float64(total), "server-CPU-µs/close")
	}
}

// BenchmarkFanOut broadcasts to HUB_BENCH_SUBSCRIBERS (default 1000)
// sockets held by client processes, straight from the broker handler (the
// path a Redis message takes). One op is one broadcast; it reports
// deliveries/s and server CPU-seconds per million deliveries. "batched"
// lets queues build (writev of several frames); "unbatched" waits for every
// write before the next broadcast (one syscall per delivery, the worst case).
func BenchmarkFanOut(b *testing.B) {
	subs := envInt("HUB_BENCH_SUBSCRIBERS", 1000)
	n := benchNode(b)
	lc := clientProcs(b, n, subs, "bench:room")
	lc.open()
	defer lc.stop()
	payload := messagePayload("bench:room", []byte(`{"text":"hello, sessionhub","n":12345}`), "server")
	idle := func() {
		// Polled coarsely: the poll's own CPU is counted as the server's.
		for n.h.writers.Load() > 0 || !n.h.flush.idle() || !n.h.bcast.idle() {
			time.Sleep(time.Millisecond)
		}
	}
	for _, mode := range []string{"batched", "unbatched"} {
		b.Run(mode, func(b *testing.B) {
			idle()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, t0 := cpuTime(), time.Now()
			for range b.N {
				n.h.message("ch:bench:room", payload)
				if mode == "unbatched" {
					idle()
				}
			}
			idle()
			cpu, wall := cpuTime()-cpu0, time.Since(t0)
			deliveries := float64(b.N) * float64(subs)
			b.ReportMetric(deliveries/wall.Seconds(), "deliveries/s")
			b.ReportMetric(cpu.Seconds()/deliveries*1e6, "CPU-s/M-deliveries")
		})
	}
}

// BenchmarkHandshake dials and closes one socket per op in-process (client
// cost included; see BenchmarkIdleSockets for server-only CPU per connect).
func BenchmarkHandshake(b *testing.B) {
	n := benchNode(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c, err := rawDial(n.wsURL(), benchToken(i))
		if err != nil {
			b.Fatal(err)
		}
		c.nc.Close()
	}
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for n.h.Connections() > 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
}
