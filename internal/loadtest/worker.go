package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A worker holds sockets for the parent: in the parent's own process when
// they fit under its file limit, otherwise in child processes of the same
// binary (`sessionhub bench worker`). Parent and worker speak JSON lines:
// commands on the worker's stdin, events on its stdout.

// Conn describes one socket to open.
type Conn struct {
	URL       string   `json:"url"` // ws://host:port/ws
	Token     string   `json:"token"`
	SessionID string   `json:"sid"`
	Subscribe []string `json:"sub,omitempty"`
}

type command struct {
	Op          string `json:"op"` // open, stats, closeall
	Conns       []Conn `json:"conns,omitempty"`
	Concurrency int    `json:"concurrency,omitempty"`
	Sources     int    `json:"sources,omitempty"`
}

type event struct {
	Op        string         `json:"op"` // opened, closed, stats, done
	OK        int            `json:"ok,omitempty"`
	Failed    int            `json:"failed,omitempty"`
	Errors    []string       `json:"errors,omitempty"`
	Handshake []int64        `json:"handshake_ns,omitempty"`
	SessionID string         `json:"sid,omitempty"`
	Code      int            `json:"code,omitempty"`
	At        int64          `json:"at,omitempty"`   // unix ns; a close: when its frame reached the socket
	Seen      int64          `json:"seen,omitempty"` // unix ns; a close: when the reader saw it
	Open      int            `json:"open,omitempty"`
	Messages  int64          `json:"messages,omitempty"`
	Latency   []int64        `json:"latency_ns,omitempty"`
	Codes     map[string]int `json:"codes,omitempty"`
}

// latencySample caps how many delivery latencies one worker keeps; past it,
// every other one is dropped (a uniform thinning good enough for p99).
const latencySample = 200_000

type workerState struct {
	mu      sync.Mutex // conns, lat, seen, keepOne, codes
	outMu   sync.Mutex // out
	out     *json.Encoder
	conns   []*wsConn
	live    atomic.Int64
	msgs    atomic.Int64
	lat     []int64
	keepOne int // keep 1 of keepOne latencies
	seen    int
	codes   map[string]int
	dialers []*net.Dialer
	wg      sync.WaitGroup
}

// emit writes one event under its own lock, so a slow parent never holds
// up the socket readers, which take mu to count deliveries.
func (w *workerState) emit(e event) {
	w.outMu.Lock()
	defer w.outMu.Unlock()
	_ = w.out.Encode(e)
}

// RunWorker serves commands from r and writes events to out until r ends or
// a closeall command is done.
func RunWorker(ctx context.Context, r io.Reader, out io.Writer) error {
	bw := bufio.NewWriter(out)
	w := &workerState{out: json.NewEncoder(flushWriter{bw}), keepOne: 1, codes: map[string]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	for sc.Scan() {
		var c command
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			return fmt.Errorf("worker: bad command: %w", err)
		}
		switch c.Op {
		case "open":
			w.openAll(ctx, c)
		case "stats":
			w.mu.Lock()
			e := event{Op: "stats", Open: int(w.live.Load()), Messages: w.msgs.Load(), Latency: w.lat, Codes: maps.Clone(w.codes)}
			w.lat = nil
			w.mu.Unlock()
			w.msgs.Store(0)
			w.emit(e)
		case "closeall":
			w.mu.Lock()
			conns := w.conns
			w.conns = nil
			w.mu.Unlock()
			for _, c := range conns {
				c.close()
			}
			w.wg.Wait()
			w.emit(event{Op: "done"})
			return nil
		default:
			return fmt.Errorf("worker: unknown op %q", c.Op)
		}
	}
	return sc.Err()
}

type flushWriter struct{ w *bufio.Writer }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.w.Flush()
	}
	return n, err
}

// dialersFor returns dialers from distinct loopback source addresses, so
// that many sockets to one server port do not exhaust one source
// address's ephemeral ports.
func dialersFor(sources int) []*net.Dialer {
	if sources < 1 {
		sources = 1
	}
	ds := make([]*net.Dialer, sources)
	for i := range ds {
		ds[i] = &net.Dialer{Timeout: 10 * time.Second}
		if sources > 1 {
			ds[i].LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+i/250), byte(2+i%250))}
		}
	}
	return ds
}

func (w *workerState) openAll(ctx context.Context, c command) {
	if w.dialers == nil {
		w.dialers = dialersFor(c.Sources)
	}
	conc := max(1, c.Concurrency)
	sem := make(chan struct{}, conc)
	var mu sync.Mutex
	res := event{Op: "opened"}
	var wg sync.WaitGroup
	for i, cn := range c.Conns {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			dl := w.dialers[i%len(w.dialers)]
			if !isLoopback(cn.URL) {
				dl = &net.Dialer{Timeout: 10 * time.Second}
			}
			d, err := w.open(ctx, dl, cn)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Failed++
				if len(res.Errors) < 5 {
					res.Errors = append(res.Errors, err.Error())
				}
				return
			}
			res.OK++
			res.Handshake = append(res.Handshake, int64(d))
		}()
	}
	wg.Wait()
	w.emit(res)
}

func isLoopback(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	ip := net.ParseIP(p.Hostname())
	return ip != nil && ip.IsLoopback()
}

// open dials one socket, waits for its welcome (and the acks of its
// subscriptions) and starts its reader. It returns the handshake latency:
// dial to welcome.
func (w *workerState) open(ctx context.Context, dl *net.Dialer, cn Conn) (time.Duration, error) {
	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ws, err := dialWS(dctx, dl, cn.URL, []string{"sessionhub.v1", "bearer." + cn.Token})
	if err != nil {
		return 0, fmt.Errorf("dial: %w", explainDial(err))
	}
	// Setup reads are bounded like the dial; the reader then has no deadline.
	dlt, _ := dctx.Deadline()
	_ = ws.nc.SetReadDeadline(dlt)
	var first struct {
		Type string `json:"type"`
	}
	msg, err := ws.read()
	if err != nil || json.Unmarshal(msg, &first) != nil || first.Type != "welcome" {
		ws.close()
		return 0, fmt.Errorf("no welcome frame: %v", err)
	}
	d := time.Since(start)
	for i, ch := range cn.Subscribe {
		id := fmt.Sprintf("s%d", i)
		req, _ := json.Marshal(map[string]string{"type": "subscribe", "channel": ch, "id": id})
		if err := ws.write(0x1, req); err != nil {
			ws.close()
			return 0, fmt.Errorf("subscribe: %w", err)
		}
		msg, err := ws.read()
		if err != nil || !strings.Contains(string(msg), `"ack"`) {
			ws.close()
			return 0, fmt.Errorf("subscribe %s refused: %s %v", ch, msg, err)
		}
	}
	_ = ws.nc.SetReadDeadline(time.Time{})
	w.mu.Lock()
	w.conns = append(w.conns, ws)
	w.mu.Unlock()
	w.live.Add(1)
	w.wg.Add(1)
	go w.read(ws, cn.SessionID)
	return d, nil
}

// read consumes frames until the socket closes, timing deliveries whose
// data carries the publisher's clock as {"t": unix ns}, and reports the
// close code and instant. The clock is read before the message is parsed,
// and a delivery costs no allocation (fanout's 20,000–500,000 deliveries a
// second share one core with the publisher: a slow reader would show as
// server latency).
func (w *workerState) read(ws *wsConn, sid string) {
	defer w.wg.Done()
	for {
		msg, err := ws.read()
		if err != nil {
			// A close is timed when its frame reached the socket (the
			// kernel's receive time), not when this reader got the CPU:
			// the load core, shared with Redis and Postgres, runs the
			// readers of a session's sockets one after another.
			seen := time.Now().UnixNano()
			at := seen
			code := closeCode(err)
			if rx := rxTime(ws.nc); code != -1 && rx != 0 && rx <= at {
				at = rx
			}
			w.live.Add(-1)
			w.mu.Lock()
			w.codes[fmt.Sprint(code)]++
			w.mu.Unlock()
			w.emit(event{Op: "closed", SessionID: sid, Code: code, At: at, Seen: seen})
			return
		}
		now := time.Now().UnixNano()
		t, ok := deliveryTime(msg)
		if !ok {
			continue
		}
		w.msgs.Add(1)
		if t == 0 {
			continue
		}
		lat := now - t
		w.mu.Lock()
		w.seen++
		if w.seen%w.keepOne == 0 {
			w.lat = append(w.lat, lat)
			if len(w.lat) >= latencySample {
				// Thin to half and keep one in twice as many from now on.
				for i := 0; i < len(w.lat)/2; i++ {
					w.lat[i] = w.lat[2*i]
				}
				w.lat = w.lat[:len(w.lat)/2]
				w.keepOne *= 2
			}
		}
		w.mu.Unlock()
	}
}

// messagePrefix starts every hub delivery (hub.messagePayload's encoding).
var messagePrefix = []byte(`{"type":"message",`)

// deliveryTime reports whether msg is a delivery ({"type":"message"}) and
// the publisher's clock in its data {"t": ns}, 0 when it carries none. The
// hub's own encoding is scanned without allocating; anything else is
// decoded as JSON.
func deliveryTime(msg []byte) (int64, bool) {
	if bytes.HasPrefix(msg, messagePrefix) {
		if i := bytes.Index(msg, []byte(`"data":{"t":`)); i >= 0 {
			var t int64
			j := i + len(`"data":{"t":`)
			for ; j < len(msg) && msg[j] >= '0' && msg[j] <= '9'; j++ {
				t = t*10 + int64(msg[j]-'0')
			}
			if j < len(msg) && msg[j] == '}' {
				return t, true
			}
		}
	}
	var m struct {
		Type string `json:"type"`
		Data struct {
			T int64 `json:"t"`
		} `json:"data"`
	}
	if json.Unmarshal(msg, &m) != nil || m.Type != "message" {
		return 0, false
	}
	return m.Data.T, true
}
