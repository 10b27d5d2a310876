// Command writefloor measures the kernel's floor for a broadcast that makes
// one write(2) per socket: the server CPU of writing one small WebSocket
// frame to each of N loopback TCP sockets whose other ends are held (and
// drained) by another process, as the hub's flushers do when nothing
// coalesces. It compares three ways of making that write:
//
//   - syscall: syscall.Write on the socket's fd in a tight loop (nothing but
//     the syscall: the floor);
//   - rawconn: syscall.RawConn.Write with a non-blocking syscall.Write inside,
//     as hub.sockConn.tryWrite does (adds the poller's fd locking);
//   - netconn: net.Conn.Write (adds the deadline checks and net.Conn's path).
//
// CPU is the process's own (getrusage RUSAGE_SELF, user + system), so it
// includes loopback's receive-side work that the kernel runs in the
// writer's context (softirq, waking the reader), exactly as it is charged
// to the hub in `scripts/bench fanout`. Run it pinned like the bench:
//
//	go build -o /tmp/writefloor ./internal/writefloor
//	taskset -c 0 /tmp/writefloor -n 10000 -rounds 20 -readers-cpu 1
//
// Each round writes one frame to every socket, then pauses (-pause) so the
// reader drains and every write meets an empty socket, as at 2 messages
// per socket per second.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if addr := os.Getenv("WRITEFLOOR_DIAL"); addr != "" {
		reader(addr)
		return
	}
	n := flag.Int("n", 10000, "sockets (the open-files limit is 20,000 per process)")
	rounds := flag.Int("rounds", 20, "writes per socket per mode")
	pause := flag.Duration("pause", 200*time.Millisecond, "pause between rounds (readers drain)")
	size := flag.Int("size", 60, "frame size in bytes")
	cpus := flag.String("readers-cpu", "1", "CPUs of the reader process (taskset -c); empty: unpinned")
	only := flag.String("modes", "syscall,rawconn,netconn", "modes to run, in this order")
	flag.Parse()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	if *cpus != "" {
		cmd = exec.Command("taskset", "-c", *cpus, os.Args[0])
	}
	cmd.Env = append(os.Environ(), "WRITEFLOOR_DIAL="+ln.Addr().String(), "WRITEFLOOR_N="+strconv.Itoa(*n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		fatal(err)
	}
	if err := cmd.Start(); err != nil {
		fatal(err)
	}
	conns := make([]*net.TCPConn, 0, *n)
	fds := make([]int, 0, *n)
	raws := make([]syscall.RawConn, 0, *n)
	for len(conns) < *n {
		c, err := ln.Accept()
		if err != nil {
			fatal(err)
		}
		tc := c.(*net.TCPConn)
		raw, err := tc.SyscallConn()
		if err != nil {
			fatal(err)
		}
		_ = raw.Control(func(fd uintptr) { fds = append(fds, int(fd)) })
		conns = append(conns, tc)
		raws = append(raws, raw)
	}
	_ = ln.Close()

	// A server text frame of size bytes: 0x81, length, payload.
	frame := make([]byte, *size)
	frame[0], frame[1] = 0x81, byte(*size-2)
	for i := 2; i < len(frame); i++ {
		frame[i] = 'x'
	}

	var buf []byte
	var wn int
	rawWrite := func(fd uintptr) bool {
		for {
			k, err := syscall.Write(int(fd), buf)
			if err == syscall.EINTR {
				continue
			}
			wn = k
			return true
		}
	}
	type mode struct {
		name  string
		write func(i int) int
	}
	modes := []mode{
		{"syscall", func(i int) int { k, _ := syscall.Write(fds[i], frame); return k }},
		{"rawconn", func(i int) int { buf = frame; _ = raws[i].Write(rawWrite); return wn }},
		{"netconn", func(i int) int { k, _ := conns[i].Write(frame); return k }},
	}
	fmt.Printf("writefloor: %d loopback sockets, %d-byte frames, %d rounds per mode, %s pause, GOMAXPROCS %d\n",
		*n, *size, *rounds, *pause, runtime.GOMAXPROCS(0))
	fmt.Printf("%-8s %12s %12s %12s %14s\n", "mode", "CPU/write", "user/write", "sys/write", "wall/round")
	time.Sleep(*pause)
	for _, name := range strings.Split(*only, ",") {
		i := slices.IndexFunc(modes, func(m mode) bool { return m.name == name })
		if i < 0 {
			fatal(fmt.Errorf("unknown mode %q", name))
		}
		m := modes[i]
		short := 0
		var wall time.Duration
		u0, s0 := rusage()
		for r := 0; r < *rounds; r++ {
			t := time.Now()
			for i := range conns {
				if m.write(i) != len(frame) {
					short++
				}
			}
			wall += time.Since(t)
			// The pause is idle time: its (tiny) CPU is counted too.
			time.Sleep(*pause)
		}
		u1, s1 := rusage()
		w := float64(*rounds * *n)
		fmt.Printf("%-8s %10.2fµs %10.2fµs %10.2fµs %12.1fms", m.name,
			float64(u1-u0+s1-s0)/1e3/w, float64(u1-u0)/1e3/w, float64(s1-s0)/1e3/w,
			float64(wall)/1e6/float64(*rounds))
		if short > 0 {
			fmt.Printf("  (%d short writes)", short)
		}
		fmt.Println()
	}
	_ = stdin.Close()
	for _, c := range conns {
		_ = c.Close()
	}
	_ = cmd.Wait()
}

// rusage returns the process's user and system CPU in ns.
func rusage() (user, sys int64) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano(), ru.Stime.Nano()
}

// reader dials the sockets and drains them until stdin closes.
func reader(addr string) {
	n, _ := strconv.Atoi(os.Getenv("WRITEFLOOR_N"))
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fatal(err)
		}
		go func() {
			r := bufio.NewReaderSize(c, 4096)
			_, _ = io.Copy(io.Discard, r)
		}()
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "writefloor:", err)
	os.Exit(1)
}
