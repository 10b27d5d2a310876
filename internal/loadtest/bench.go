package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Cred is one session the bench may use: its user, its public id and its
// token "<id>.<secret>".
type Cred struct {
	UserID    string
	SessionID string
	Token     string
}

// Provisioner creates users and sessions the way the CLI does.
type Provisioner interface {
	// Sessions creates `users` users holding scopes, each with perUser
	// sessions of kind ("browser" or "service").
	Sessions(ctx context.Context, users, perUser int, kind string, scopes []string) ([]Cred, error)
}

// Options are the flags shared by the scenarios.
type Options struct {
	Targets     []string // public base URLs, one per node
	MetricsURLs []string // metrics base URLs, one per node
	Sources     int      // loopback source addresses to dial from
	PerProcess  int      // sockets per worker process
	Concurrency int      // handshakes in flight per worker
	PerUser     int      // sockets per user, ≤ the server's per-user limit
	JSON        bool
	WorkerCmd   []string
	Progress    io.Writer
	Prov        Provisioner
	HTTP        *http.Client
}

// Main runs `sessionhub bench <scenario> [flags]` and returns the exit code.
// `bench worker` is the child-process side and reads commands from stdin.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, prov Provisioner, workerCmd []string) int {
	if len(args) > 0 && args[0] == "worker" {
		if err := RunWorker(ctx, stdin, stdout); err != nil {
			fmt.Fprintln(stderr, "bench worker:", err)
			return 1
		}
		return 0
	}
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	scenario := args[0]
	fs := flag.NewFlagSet("bench "+scenario, flag.ContinueOnError)
	fs.SetOutput(stderr)
	targets := fs.String("targets", "http://127.0.0.1:8080", "comma-separated public base URLs, one per node")
	metrics := fs.String("metrics", "http://127.0.0.1:9090", "comma-separated metrics base URLs, in the order of --targets")
	// Our own transport, so that its idle connections end with the run.
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	o := Options{Prov: prov, WorkerCmd: workerCmd, Progress: stderr, HTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	fs.IntVar(&o.Sources, "sources", 50, "loopback source addresses 127.0.0.x to dial from")
	fs.IntVar(&o.PerProcess, "per-process", 15000, "sockets per client process (the open-files limit bounds it)")
	fs.IntVar(&o.Concurrency, "concurrency", 64, "handshakes in flight per client process")
	fs.IntVar(&o.PerUser, "per-user", 30, "sockets per user (keep under SESSIONHUB_MAX_SOCKETS_PER_USER)")
	fs.BoolVar(&o.JSON, "json", false, "print the figures as JSON")
	n := fs.Int("n", 1000, "sockets (idle, revoke background, fanout subscribers)")
	hold := fs.Duration("hold", 5*time.Second, "idle: how long to hold the sockets before measuring (150s lets Go's forced GC settle; the bench also forces one)")
	revokes := fs.Int("revokes", 200, "revoke: sessions revoked one at a time (each with a socket on every node)")
	users := fs.Int("users", 50, "revoke: users logged out everywhere one at a time (each with a socket on every node)")
	burst := fs.Int("burst", 1000, "revoke: sessions revoked at once")
	rate := fs.Int("rate", 2, "fanout: messages published per second to the channel")
	dur := fs.Duration("duration", 10*time.Second, "fanout, http: how long to run")
	pushes := fs.Int("pushes", 500, "fanout: user-channel pushes through POST /api/publish")
	sessionsN := fs.Int("sessions", 1000, "http: sessions in the pool")
	conns := fs.Int("conns", 32, "http: concurrent clients")
	rest := args[1:]
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") { // `bench idle 10000`
		fmt.Sscan(rest[0], n)
		rest = rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	o.Targets = strings.Split(*targets, ",")
	o.MetricsURLs = strings.Split(*metrics, ",")
	if len(o.MetricsURLs) != len(o.Targets) {
		fmt.Fprintln(stderr, "bench: --metrics must list one URL per --targets entry")
		return 2
	}
	var res *Result
	var err error
	switch scenario {
	case "idle":
		res, err = Idle(ctx, o, *n, *hold)
	case "revoke":
		res, err = Revoke(ctx, o, *n, *revokes, *users, *burst)
	case "fanout":
		res, err = Fanout(ctx, o, *n, *rate, *dur, *pushes)
	case "http":
		res, err = HTTP(ctx, o, *sessionsN, *conns, *dur)
	default:
		fmt.Fprintln(stderr, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	if err := res.Print(stdout, o.JSON); err != nil {
		return 1
	}
	if len(res.Failures) > 0 {
		return 1
	}
	return 0
}

const usage = `usage: sessionhub bench <idle N | revoke | fanout | http> [flags]

Drives a running cluster from outside. Users and sessions are created in the
cluster's stores the way the CLI does (set REDIS_URL, DATABASE_URL and
SESSIONHUB_REDIS_PREFIX as for serve); everything else goes through the public
API and the metrics endpoints. Run 'sessionhub bench <scenario> -h' for flags.`

// scraper returns the metrics reader for o.
func (o Options) scraper() *Scraper { return &Scraper{URLs: o.MetricsURLs, Client: o.HTTP} }

// wsURL turns a node's base URL into its socket URL.
func wsURL(base string) string {
	return strings.Replace(strings.Replace(base, "https://", "wss://", 1), "http://", "ws://", 1) + "/ws"
}

// mintTokens trades each service session for a JWT on node 0, 32 at a time.
func (o Options) mintTokens(ctx context.Context, creds []Cred) ([]string, error) {
	out := make([]string, len(creds))
	errs := make(chan error, 1)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	p := &progress{w: o.Progress, label: "tokens", total: len(creds)}
	var mu sync.Mutex
	done := 0
	for i, c := range creds {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var body struct {
				Token string `json:"token"`
			}
			err := o.do(ctx, http.MethodPost, o.Targets[i%len(o.Targets)]+"/session/token", "Session "+c.Token, nil, &body)
			if err != nil {
				select {
				case errs <- err:
				default:
				}
				return
			}
			out[i] = body.Token
			mu.Lock()
			done++
			p.set(done)
			mu.Unlock()
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return nil, fmt.Errorf("mint tokens: %w", err)
	default:
	}
	return out, nil
}

// do sends one JSON request with an Authorization header and decodes a 2xx
// JSON answer into out (when not nil).
func (o Options) do(ctx context.Context, method, url, authz string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := o.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// socketsFor lays out n sockets over users of o.PerUser sockets each,
// round-robin over the nodes, and returns the conns with their creds.
func (o Options) socketsFor(ctx context.Context, n int, scopes []string, subscribe []string) ([]Conn, []Cred, error) {
	users := (n + o.PerUser - 1) / o.PerUser
	creds, err := o.Prov.Sessions(ctx, users, 1, "service", scopes)
	if err != nil {
		return nil, nil, fmt.Errorf("provision: %w", err)
	}
	toks, err := o.mintTokens(ctx, creds)
	if err != nil {
		return nil, nil, err
	}
	conns := make([]Conn, 0, n)
	for i := 0; i < n; i++ {
		u := i / o.PerUser
		conns = append(conns, Conn{URL: wsURL(o.Targets[i%len(o.Targets)]), Token: toks[u], SessionID: creds[u].SessionID, Subscribe: subscribe})
	}
	return conns, creds, nil
}

var errNoSockets = errors.New("no socket opened")
