package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/sessionhub/sessionhub/auth"
	"github.com/sessionhub/sessionhub/internal/loadtest"
	"github.com/sessionhub/sessionhub/sessions"
)

// benchCmd runs `sessionhub bench <scenario>` (the load generator of
// internal/loadtest) and `sessionhub bench worker` (its child process, which
// holds sockets past one process's file limit). Users and sessions are
// created on the stores named by the serve environment, the way the user and
// session commands create them.
func benchCmd(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	prov := &benchProvisioner{getenv: getenv, stderr: stderr, run: sessions.RandomString(6)}
	defer prov.close()
	var worker []string
	if exe, err := os.Executable(); err == nil {
		worker = []string{exe, "bench", "worker"}
	}
	switch loadtest.Main(ctx, args, stdin, stdout, stderr, prov, worker) {
	case 0:
		return nil
	case 2:
		return &usageError{err: errors.New("bench: bad command line"), quiet: true}
	}
	return errBenchFailed
}

// errBenchFailed: the scenario stopped, or one of its checks (no background
// socket closed, every delivery arrived…) did not hold; the details are
// already on stdout/stderr.
var errBenchFailed = errors.New("bench: the run failed (see above)")

// benchConcurrency is how many users are created at once: enough to keep a
// Postgres pool busy without queueing thousands of goroutines on it.
const benchConcurrency = 32

// benchProvisioner implements loadtest.Provisioner on the auth package's
// command-line methods (service sessions, with their audit rows) and on the
// session store (browser sessions, which the CLI cannot make). It opens the
// stores on first use, so `bench worker` never needs them.
type benchProvisioner struct {
	getenv func(string) string
	stderr io.Writer
	run    string // random tag in every email, so runs never collide

	mu    sync.Mutex
	auth  *auth.Server
	store *sessions.Store
	seq   int
	shut  func()
}

func (p *benchProvisioner) open(ctx context.Context) (*auth.Server, *sessions.Store, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.auth != nil {
		return p.auth, p.store, nil
	}
	a, b, err := openToolBackends(ctx, p.getenv, p.stderr, slog.LevelError)
	if err != nil {
		return nil, nil, err
	}
	p.auth, p.store, p.shut = a, b.store, b.close
	return a, b.store, nil
}

func (p *benchProvisioner) close() {
	if p.shut != nil {
		p.shut()
	}
}

// Sessions creates users holding scopes (no password: no argon2 cost),
// each with perUser sessions of kind, benchConcurrency users at a time.
// Creds come back user by user, in order.
func (p *benchProvisioner) Sessions(ctx context.Context, users, perUser int, kind string, scopes []string) ([]loadtest.Cred, error) {
	a, store, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	first := p.seq
	p.seq += users
	p.mu.Unlock()

	out := make([]loadtest.Cred, users*perUser)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		done     int
		mu       sync.Mutex
	)
	start := time.Now()
	sem := make(chan struct{}, benchConcurrency)
	for i := range users {
		sem <- struct{}{}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			email := fmt.Sprintf("bench-%s-%d@example.com", p.run, first+i)
			creds, err := p.user(ctx, a, store, email, perUser, kind, scopes)
			if err != nil {
				errOnce.Do(func() { firstErr = err; cancel() })
				return
			}
			copy(out[i*perUser:], creds)
			mu.Lock()
			done++
			if done%1000 == 0 {
				fmt.Fprintf(p.stderr, "provisioned %d/%d users (%s)\n", done, users, time.Since(start).Round(time.Millisecond))
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("create bench users: %w", firstErr)
	}
	return out, nil
}

// user creates one user and its sessions.
func (p *benchProvisioner) user(ctx context.Context, a *auth.Server, store *sessions.Store, email string, perUser int, kind string, scopes []string) ([]loadtest.Cred, error) {
	u, err := a.CreateUser(ctx, email, "bench", "", scopes)
	if err != nil {
		return nil, cliError(err, email)
	}
	creds := make([]loadtest.Cred, 0, perUser)
	for range perUser {
		var tok string
		switch sessions.Kind(kind) {
		case sessions.KindService:
			if tok, err = a.CreateServiceSession(ctx, email, "bench", scopes); err != nil {
				return nil, cliError(err, email)
			}
		case sessions.KindBrowser:
			_, t, err := store.Create(ctx, sessions.NewSession{
				UserID: u.ID, Kind: sessions.KindBrowser, Scopes: u.Scopes, UserAgent: "sessionhub-bench",
			})
			if err != nil {
				return nil, err
			}
			tok = t.String()
		default:
			return nil, fmt.Errorf("bench: session kind %q is not browser or service", kind)
		}
		t, err := sessions.ParseToken(tok)
		if err != nil {
			return nil, err
		}
		creds = append(creds, loadtest.Cred{UserID: u.ID, SessionID: t.ID, Token: tok})
	}
	return creds, nil
}
