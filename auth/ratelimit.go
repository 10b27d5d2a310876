package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// limiter is the rate-limit store: Redis shared by every node, with a
// per-node memory fallback while Redis is unreachable (API.md degraded
// modes). Keys are already scoped by purpose ("ip:…", "acct:…", "tok:…").
type limiter interface {
	// allow counts one hit against a budget of n per period (GCRA: a burst
	// of n, then one every period/n) and returns how long to wait when it
	// is refused (0 when allowed).
	allow(ctx context.Context, key string, n int, period time.Duration) (time.Duration, error)
	// blocked returns the time left on key's login backoff (0 if none).
	blocked(ctx context.Context, key string) (time.Duration, error)
	// fail records one failure on key: after free failures, each further
	// one blocks key for base·2^(failures-free), capped at max.
	fail(ctx context.Context, key string, b backoff) error
	// reset forgets key's failures (a successful login).
	reset(ctx context.Context, key string) error
}

// backoff is the per-account failure policy.
type backoff struct {
	free      int
	base, max time.Duration
	// memory is how long failures are remembered after the last one.
	memory time.Duration
}

func (b backoff) delay(failures int64) time.Duration {
	if failures < int64(b.free) {
		return 0
	}
	exp := failures - int64(b.free)
	if exp > 40 {
		return b.max
	}
	return min(b.base*time.Duration(int64(1)<<exp), b.max)
}

// gcra computes one GCRA step: tat is the stored theoretical arrival time
// (ms), now the current time (ms). It returns the new tat and the wait (ms)
// when refused.
func gcra(tat, now int64, n int, periodMS int64) (newTAT, wait int64) {
	interval := max(periodMS/int64(n), 1)
	tat = max(tat, now)
	next := tat + interval
	allowAt := next - periodMS
	if now < allowAt {
		return tat, allowAt - now
	}
	return next, 0
}

// redisAllow is gcra in Lua: KEYS[1] holds the tat in ms; ARGV now, n,
// period (ms). It runs on our clock (Now) so tests can fake it; nodes are
// NTP-synced well within a limit's granularity.
var redisAllow = redis.NewScript(`
local tat = tonumber(redis.call("GET", KEYS[1]) or "0")
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local interval = math.max(math.floor(period / n), 1)
if tat < now then tat = now end
local nxt = tat + interval
local allow_at = nxt - period
if now < allow_at then
  return allow_at - now
end
redis.call("SET", KEYS[1], nxt, "PX", math.max(nxt - now, 1))
return 0
`)

// redisFail bumps KEYS[1]'s failure count f and, from f >= free on, sets
// "until" = now + min(base * 2^(f-free), max). ARGV: now, free, base, max,
// memory (all ms). One script, so concurrent failures never lose a count.
var redisFail = redis.NewScript(`
local f = redis.call("HINCRBY", KEYS[1], "f", 1)
local now = tonumber(ARGV[1])
local free = tonumber(ARGV[2])
local base = tonumber(ARGV[3])
local maxd = tonumber(ARGV[4])
local mem = tonumber(ARGV[5])
local d = 0
if f >= free then
  local e = f - free
  if e > 40 then d = maxd else d = math.min(base * (2 ^ e), maxd) end
  redis.call("HSET", KEYS[1], "until", now + d)
end
redis.call("PEXPIRE", KEYS[1], d + mem)
return d
`)

// redisLimiter keeps limits in Redis under prefix+"rl:", falling back to a
// memory limiter (and logging once per outage) while Redis fails.
type redisLimiter struct {
	rdb      redis.UniversalClient
	prefix   string
	now      func() time.Time
	fallback *memLimiter
	log      *slog.Logger
	mu       sync.Mutex
	down     bool
	// retryAt is when Redis is tried again after a failure (real time):
	// meanwhile every call goes straight to memory, so an outage does not
	// cost each login a timeout.
	retryAt time.Time
}

// redisRetryAfter is how long a failed Redis is left alone before the
// limiter tries it again.
const redisRetryAfter = 5 * time.Second

// useRedis reports whether Redis should be tried now.
func (l *redisLimiter) useRedis() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.down || !time.Now().Before(l.retryAt)
}

// limitTimeout bounds one Redis limit call: a slow Redis degrades to the
// per-node limiter instead of slowing every login.
const limitTimeout = 500 * time.Millisecond

func newRedisLimiter(rdb redis.UniversalClient, prefix string, now func() time.Time, log *slog.Logger) *redisLimiter {
	return &redisLimiter{rdb: rdb, prefix: prefix + "rl:", now: now, fallback: newMemLimiter(now), log: log}
}

func (l *redisLimiter) noteErr(err error) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil && !l.down {
		l.log.Warn("rate limits fall back to this node's memory: Redis unreachable", slog.Any("err", err))
	} else if err == nil && l.down {
		l.log.Info("rate limits back on Redis")
	}
	l.down = err != nil
	if l.down {
		l.retryAt = time.Now().Add(redisRetryAfter)
	}
	return err != nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func (l *redisLimiter) allow(ctx context.Context, key string, n int, period time.Duration) (time.Duration, error) {
	if !l.useRedis() {
		return l.fallback.allow(ctx, key, n, period)
	}
	ctx, cancel := context.WithTimeout(ctx, limitTimeout)
	defer cancel()
	wait, err := redisAllow.Run(ctx, l.rdb, []string{l.prefix + key}, ms(l.now()), n, period.Milliseconds()).Int64()
	if l.noteErr(err) {
		return l.fallback.allow(ctx, key, n, period)
	}
	return time.Duration(wait) * time.Millisecond, nil
}

func (l *redisLimiter) blocked(ctx context.Context, key string) (time.Duration, error) {
	if !l.useRedis() {
		return l.fallback.blocked(ctx, key)
	}
	ctx, cancel := context.WithTimeout(ctx, limitTimeout)
	defer cancel()
	until, err := l.rdb.HGet(ctx, l.prefix+key, "until").Int64()
	if err == redis.Nil {
		err, until = nil, 0
	}
	if l.noteErr(err) {
		return l.fallback.blocked(ctx, key)
	}
	return max(time.Duration(until-ms(l.now()))*time.Millisecond, 0), nil
}

func (l *redisLimiter) fail(ctx context.Context, key string, b backoff) error {
	if !l.useRedis() {
		return l.fallback.fail(ctx, key, b)
	}
	ctx, cancel := context.WithTimeout(ctx, limitTimeout)
	defer cancel()
	err := redisFail.Run(ctx, l.rdb, []string{l.prefix + key}, ms(l.now()), b.free,
		b.base.Milliseconds(), b.max.Milliseconds(), b.memory.Milliseconds()).Err()
	if l.noteErr(err) {
		return l.fallback.fail(ctx, key, b)
	}
	return nil
}

func (l *redisLimiter) reset(ctx context.Context, key string) error {
	_ = l.fallback.reset(ctx, key)
	if !l.useRedis() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, limitTimeout)
	defer cancel()
	err := l.rdb.Del(ctx, l.prefix+key).Err()
	l.noteErr(err)
	return err
}

// memLimiter is the per-node limiter: the embedded mode's only one, and the
// fallback of redisLimiter.
type memLimiter struct {
	mu   sync.Mutex
	now  func() time.Time
	tat  map[string]int64
	acct map[string]*memFailures
}

type memFailures struct {
	f       int64
	until   int64 // ms
	expires int64 // ms
}

// maxMemLimitKeys bounds the memory limiter; past it, expired entries are
// swept, and if that frees nothing the maps start over (which loses limits
// for a moment on one node, never correctness elsewhere).
const maxMemLimitKeys = 200_000

func newMemLimiter(now func() time.Time) *memLimiter {
	return &memLimiter{now: now, tat: map[string]int64{}, acct: map[string]*memFailures{}}
}

func (m *memLimiter) sweep(now int64) {
	if len(m.tat)+len(m.acct) < maxMemLimitKeys {
		return
	}
	for k, t := range m.tat {
		if t <= now {
			delete(m.tat, k)
		}
	}
	for k, a := range m.acct {
		if a.expires <= now {
			delete(m.acct, k)
		}
	}
	if len(m.tat)+len(m.acct) >= maxMemLimitKeys {
		clear(m.tat)
		clear(m.acct)
	}
}

func (m *memLimiter) allow(_ context.Context, key string, n int, period time.Duration) (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := ms(m.now())
	m.sweep(now)
	tat, wait := gcra(m.tat[key], now, n, period.Milliseconds())
	m.tat[key] = tat
	return time.Duration(wait) * time.Millisecond, nil
}

func (m *memLimiter) blocked(_ context.Context, key string) (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.acct[key]
	now := ms(m.now())
	if !ok || a.expires <= now {
		return 0, nil
	}
	return max(time.Duration(a.until-now)*time.Millisecond, 0), nil
}

func (m *memLimiter) fail(_ context.Context, key string, b backoff) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := ms(m.now())
	m.sweep(now)
	a, ok := m.acct[key]
	if !ok || a.expires <= now {
		a = &memFailures{}
		m.acct[key] = a
	}
	a.f++
	d := b.delay(a.f)
	if d > 0 {
		a.until = now + d.Milliseconds()
	}
	a.expires = now + d.Milliseconds() + b.memory.Milliseconds()
	return nil
}

func (m *memLimiter) reset(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.acct, key)
	return nil
}

// accountKey names an account's backoff by a hash of its lower-cased
// email, whether or not the account exists, so throttling answers the same
// for both and Redis never holds an email.
func accountKey(email string) string {
	h := sha256.Sum256([]byte(strings.ToLower(email)))
	return "acct:" + hex.EncodeToString(h[:16])
}

// retryAfterSeconds rounds a wait up to whole seconds, at least 1, for the
// Retry-After header.
func retryAfterSeconds(d time.Duration) int {
	return max(int(math.Ceil(d.Seconds())), 1)
}
