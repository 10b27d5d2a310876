package sessions_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sessionhub/sessionhub/internal/testenv"
	"github.com/sessionhub/sessionhub/sessions"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is the Store's and Memory's clock in tests: time moves only
// when the test says so.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	// Microseconds: what Postgres and the Redis hash keep, so that
	// round-tripped times compare equal.
	return &fakeClock{now: time.Now().UTC().Truncate(time.Microsecond)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// bundle is a Store under test and handles on its collaborators, so one
// contract suite can look behind the Store on either backend pair.
type bundle struct {
	store *sessions.Store
	clock *fakeClock
	hot   sessions.Hot
	cfg   sessions.Config
	// newUser returns the id of a fresh user (a users row for Postgres).
	newUser func(t testing.TB) string
	// hotHas reports whether the hot backend still holds the session
	// (Redis: the key exists, whatever the fake clock says).
	hotHas func(t testing.TB, id string) bool
	// hotTTL is the Redis key's PTTL; nil for memory.
	hotTTL func(t testing.TB, id string) time.Duration
	// durableRow reads the durable record behind the Store's back; nil
	// when absent.
	durableRow func(t testing.TB, id string) *sessions.Session
	// events subscribes to revocation events and returns their JSON.
	events func(t testing.TB) <-chan []byte
	// hotKeys lists every key under the Redis prefix; nil for memory.
	hotKeys func(t testing.TB) []string
	// stopRun cancels the Store's Run loop and waits for its final flush.
	stopRun func()
}

type setupFunc func(t testing.TB, cfg sessions.Config) *bundle

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startRun runs store.Run until the test ends or stop is called.
func startRun(t testing.TB, store *sessions.Store) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = store.Run(ctx)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func setupMemory(t testing.TB, cfg sessions.Config) *bundle {
	clock := newFakeClock()
	cfg.Now, cfg.Logger = clock.Now, discardLogger()
	mem := sessions.NewMemory(clock.Now)
	store, err := sessions.New(cfg, mem, mem, mem)
	require.NoError(t, err)
	b := &bundle{store: store, clock: clock, hot: mem, cfg: store.Config()}
	b.newUser = func(testing.TB) string { return newUUID() }
	b.hotHas = func(t testing.TB, id string) bool {
		exp, err := mem.Expiries(context.Background(), []string{id})
		require.NoError(t, err)
		return exp[0].OK
	}
	b.durableRow = func(t testing.TB, id string) *sessions.Session {
		rows, err := mem.GetMany(context.Background(), []string{id})
		require.NoError(t, err)
		if len(rows) == 0 {
			return nil
		}
		return rows[0]
	}
	b.events = func(t testing.TB) <-chan []byte {
		ch := make(chan []byte, 100)
		cancel := mem.Subscribe(func(e sessions.Event) {
			js, err := json.Marshal(e)
			if err == nil {
				ch <- js
			}
		})
		t.Cleanup(cancel)
		return ch
	}
	b.stopRun = startRun(t, store)
	return b
}

func setupRedisPostgres(t testing.TB, cfg sessions.Config) *bundle {
	rdb, prefix := testenv.Redis(t)
	return newRedisPostgresBundle(t, cfg, rdb, prefix, testenv.Postgres(t))
}

// newRedisPostgresBundle builds a Store on the given real Redis and
// Postgres.
func newRedisPostgresBundle(t testing.TB, cfg sessions.Config, rdb redis.UniversalClient, prefix string, pool *pgxpool.Pool) *bundle {
	clock := newFakeClock()
	cfg.Now, cfg.Logger = clock.Now, discardLogger()
	hot := sessions.NewRedis(rdb, prefix)
	store, err := sessions.New(cfg, hot, sessions.NewPostgres(pool), hot)
	require.NoError(t, err)
	ctx := context.Background()
	b := &bundle{store: store, clock: clock, hot: hot, cfg: store.Config()}
	b.newUser = func(t testing.TB) string { return insertUser(t, pool) }
	b.hotHas = func(t testing.TB, id string) bool {
		n, err := rdb.Exists(ctx, prefix+"sess:"+id).Result()
		require.NoError(t, err)
		return n == 1
	}
	b.hotTTL = func(t testing.TB, id string) time.Duration {
		d, err := rdb.PTTL(ctx, prefix+"sess:"+id).Result()
		require.NoError(t, err)
		return d
	}
	b.durableRow = func(t testing.TB, id string) *sessions.Session {
		var (
			s       sessions.Session
			revoked *time.Time
			reason  *string
		)
		err := pool.QueryRow(ctx, `SELECT id, user_id::text, last_seen_at, expires_at,
			absolute_expires_at, revoked_at, revoke_reason FROM sessions WHERE id = $1`, id).
			Scan(&s.ID, &s.UserID, &s.LastSeenAt, &s.ExpiresAt, &s.AbsoluteExpiresAt, &revoked, &reason)
		if err != nil {
			require.ErrorContains(t, err, "no rows")
			return nil
		}
		if revoked != nil {
			s.RevokedAt = *revoked
		}
		if reason != nil {
			s.RevokeReason = sessions.Reason(*reason)
		}
		return &s
	}
	b.events = func(t testing.TB) <-chan []byte { return subscribe(t, rdb, prefix+sessions.RevocationChannel) }
	b.hotKeys = func(t testing.TB) []string {
		var keys []string
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		require.NoError(t, iter.Err())
		return keys
	}
	b.stopRun = startRun(t, store)
	return b
}

// subscribe subscribes to a real Redis channel and returns its payloads;
// the subscription is confirmed before it returns.
func subscribe(t testing.TB, rdb redis.UniversalClient, channel string) <-chan []byte {
	ctx := context.Background()
	ps := rdb.Subscribe(ctx, channel)
	_, err := ps.Receive(ctx)
	require.NoError(t, err)
	out := make(chan []byte, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for msg := range ps.Channel() {
			select {
			case out <- []byte(msg.Payload):
			default:
			}
		}
	}()
	t.Cleanup(func() { _ = ps.Close(); <-done })
	return out
}

// nextEvent waits for one event; the bound only stops a broken test from
// hanging, it asserts no latency.
func nextEvent(t testing.TB, ch <-chan []byte) map[string]any {
	t.Helper()
	select {
	case js := <-ch:
		var m map[string]any
		require.NoError(t, json.Unmarshal(js, &m), "event %s", js)
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no revocation event")
		return nil
	}
}

func noEvent(t testing.TB, ch <-chan []byte) {
	t.Helper()
	select {
	case js := <-ch:
		t.Fatalf("unexpected event %s", js)
	default:
	}
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func insertUser(t testing.TB, pool *pgxpool.Pool) string {
	id := newUUID()
	_, err := pool.Exec(context.Background(),
		`INSERT INTO users (id, email) VALUES ($1, $2)`, id, id+"@example.test")
	require.NoError(t, err)
	return id
}

// tcpProxy forwards to a real server and can cut every connection, so a
// test can take Redis away and give it back with its data intact.
type tcpProxy struct {
	t      testing.TB
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newTCPProxy(t testing.TB, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &tcpProxy{t: t, addr: ln.Addr().String(), target: target, conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	t.Cleanup(func() { p.Down(); p.wg.Wait() })
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln { // went Down while we dialled
				p.mu.Unlock()
				c.Close()
				up.Close()
				continue
			}
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			p.wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer p.wg.Done()
				_, _ = io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			go pipe(c, up)
			go pipe(up, c)
		}
	}()
}

// Down refuses new connections and cuts the open ones.
func (p *tcpProxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// Up listens again on the same address.
func (p *tcpProxy) Up() {
	ln, err := net.Listen("tcp", p.addr)
	require.NoError(p.t, err)
	p.serve(ln)
}

// create makes a browser session for userID and fails the test on error.
func create(t testing.TB, b *bundle, userID string) (*sessions.Session, sessions.Token) {
	t.Helper()
	s, tok, err := b.store.Create(context.Background(), sessions.NewSession{
		UserID: userID, Kind: sessions.KindBrowser, Scopes: []string{"sub:room:*"},
		Device: "", IP: "203.0.113.7", UserAgent: "test-agent/1.0",
	})
	require.NoError(t, err)
	return s, tok
}

// outagePrefix is the Redis key prefix of newOutageBundle's store.
const outagePrefix = "sh:"

// newOutageBundle is a Redis+Postgres store on a private redis-server
// reached through a proxy the test can cut (proxy.Down/Up), plus a direct
// client to that server for checking what Redis holds meanwhile.
func newOutageBundle(t *testing.T) (*bundle, *redis.Client, *tcpProxy) {
	t.Helper()
	srv := testenv.StartRedis(t)
	direct := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { direct.Close() })
	proxy := newTCPProxy(t, srv.Addr)
	viaProxy := redis.NewClient(&redis.Options{Addr: proxy.addr, MaxRetries: -1})
	t.Cleanup(func() { viaProxy.Close() })
	return newRedisPostgresBundle(t, sessions.Config{}, viaProxy, outagePrefix, testenv.Postgres(t)), direct, proxy
}
