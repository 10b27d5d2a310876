package sessions

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the Hot backend and the Publisher on Redis (standalone, Sentinel
// or Cluster, through redis.UniversalClient).
//
// Keys, all under the prefix:
//
//	sess:<id>        hash, one per session, PEXPIRE = the sliding TTL
//	user:<uid>:sess  set of the user's session ids (the per-user index)
//	sess:exp         sorted set id → expiry (unix µs), for CountActive
//	revocations      the pub/sub channel of Events
//
// Cluster: the three keys of one session hash to different slots, and no
// hash tag can fix that (a session is read by id alone, so its key cannot
// carry the user's tag, and the expiry index is shared by all sessions).
// So Redis never runs MULTI across them: every write is a non-transactional
// pipeline, which go-redis splits per node and sends in parallel, and
// whatever must be atomic touches one key only — the session hash is
// written together with its TTL by a Lua script on that single key (Put),
// and slid only if it still exists (Touch). The index and the expiry set are
// secondary and self-healing: UserSessions prunes index members whose hash
// is gone, Touch updates the expiry set with ZADD XX (never re-adding a
// deleted member), and stale scores are trimmed by ZREMRANGEBYSCORE.
// Revocations use PUBLISH (not SPUBLISH) so that every hub's plain
// SUBSCRIBE receives them on a cluster too.
type Redis struct {
	rdb    redis.UniversalClient
	prefix string
	// lastTrim is the unix µs of the latest trim of the expiry set, so that
	// trims run about once per trimEvery, not on every write.
	lastTrim atomic.Int64
	// batch group-commits Get and Touch, the request path (redisbatch.go).
	batch *hotBatch
}

// trimEvery spaces out ZREMRANGEBYSCORE on the expiry set: its cost grows
// with the members removed, so doing it once a minute keeps writes flat.
const trimEvery = time.Minute

var _ interface {
	Hot
	Publisher
} = (*Redis)(nil)

// NewRedis returns the Redis backend; every key and the revocation channel
// start with prefix.
func NewRedis(rdb redis.UniversalClient, prefix string) *Redis {
	r := &Redis{rdb: rdb, prefix: prefix}
	r.batch = newHotBatch(r)
	return r
}

func (r *Redis) sessKey(id string) string     { return r.prefix + "sess:" + id }
func (r *Redis) userKey(userID string) string { return r.prefix + "user:" + userID + ":sess" }
func (r *Redis) expKey() string               { return r.prefix + "sess:exp" }
func (r *Redis) channel() string              { return r.prefix + RevocationChannel }
func micros(t time.Time) string               { return strconv.FormatInt(unixMicro(t), 10) }
func expScore(s *Session) float64 {
	return float64(unixMicro(minTime(s.ExpiresAt, s.AbsoluteExpiresAt)))
}

// wrap marks every Redis failure ErrUnavailable: past ErrNotFound, which
// is answered separately, an error means Redis cannot serve us right now.
func (r *Redis) wrap(op string, err error) error {
	return fmt.Errorf("sessions: redis %s: %w: %w", op, ErrUnavailable, err)
}

// unixMicro maps the zero time to 0, so "never" survives a round trip.
func unixMicro(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicro(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// Hash field names: short, since every session carries them.
const (
	fUser      = "uid"
	fKind      = "kind"
	fScopes    = "scopes"
	fSecret    = "sh" // SHA-256 of the secret, raw bytes
	fCSRF      = "csrf"
	fDevice    = "dev"
	fIP        = "ip"
	fUA        = "ua"
	fCreated   = "created"
	fLastSeen  = "last_seen"
	fExpires   = "expires"
	fAbsolute  = "abs_expires"
	fSyncedAt  = "synced_at"
	fieldCount = 13
)

// putScript writes the whole session hash and its TTL atomically, so that a
// hash never exists without its expiry. KEYS[1] = sess:<id>; ARGV[1] = TTL
// in ms; ARGV[2..] = field, value pairs.
var putScript = redis.NewScript(`
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`)

// indexScript adds a session to its user's index and extends the index's
// TTL to cover it, never shortening it (PEXPIRE GT needs Redis 7; this runs
// on 6.2, which ZADD GT needs). KEYS[1] = user:<uid>:sess; ARGV = id, TTL ms.
var indexScript = redis.NewScript(`
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1`)

// touchScript slides an existing session and never recreates a deleted one.
// A touch older than the stored last_seen (two nodes racing) is dropped so
// the expiry never moves backwards. KEYS[1] = sess:<id>; ARGV = last_seen,
// expires, synced_at ("0": keep), TTL in ms. Returns 0 when the key is gone.
var touchScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'last_seen')
if not cur then return 0 end
if tonumber(cur) > tonumber(ARGV[1]) then return 1 end
redis.call('HSET', KEYS[1], 'last_seen', ARGV[1], 'expires', ARGV[2])
if ARGV[3] ~= '0' then redis.call('HSET', KEYS[1], 'synced_at', ARGV[3]) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`)

// runScripted runs fill in one pipeline with scripts sent by SHA; if the
// server lacks a script (first use, or a restarted Redis) it runs the
// pipeline again with the script bodies. Every command fill sends must be
// idempotent.
func (r *Redis) runScripted(ctx context.Context, fill func(p redis.Pipeliner, eval func(*redis.Script, []string, ...any) *redis.Cmd)) ([]redis.Cmder, error) {
	run := func(bySHA bool) ([]redis.Cmder, error) {
		return r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			fill(p, func(s *redis.Script, keys []string, args ...any) *redis.Cmd {
				if bySHA {
					return s.EvalSha(ctx, p, keys, args...)
				}
				return s.Eval(ctx, p, keys, args...)
			})
			return nil
		})
	}
	cmds, err := run(true)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		cmds, err = run(false)
	}
	return cmds, err
}

// Put stores s for ttl, indexes it under its user and in the expiry set.
// A non-positive ttl stores nothing: the session is already over.
func (r *Redis) Put(ctx context.Context, s *Session, ttl time.Duration) error {
	ms := ttl.Milliseconds()
	if ms <= 0 {
		return nil
	}
	scopes, err := json.Marshal(s.Scopes)
	if err != nil {
		return r.wrap("put", err)
	}
	args := []any{ms,
		fUser, s.UserID, fKind, string(s.Kind), fScopes, scopes, fSecret, s.SecretHash,
		fCSRF, s.CSRFToken, fDevice, s.Device, fIP, s.IP, fUA, s.UserAgent,
		fCreated, micros(s.CreatedAt), fLastSeen, micros(s.LastSeenAt),
		fExpires, micros(s.ExpiresAt), fAbsolute, micros(s.AbsoluteExpiresAt),
		fSyncedAt, micros(s.SyncedAt),
	}
	// The index lives as long as the longest session in it could.
	idxTTL := max(s.AbsoluteExpiresAt.Sub(s.LastSeenAt), ttl)
	_, err = r.runScripted(ctx, func(p redis.Pipeliner, eval func(*redis.Script, []string, ...any) *redis.Cmd) {
		eval(putScript, []string{r.sessKey(s.ID)}, args...)
		eval(indexScript, []string{r.userKey(s.UserID)}, s.ID, idxTTL.Milliseconds())
		p.ZAdd(ctx, r.expKey(), redis.Z{Score: expScore(s), Member: s.ID})
		r.maybeTrim(ctx, p, s.LastSeenAt)
	})
	if err != nil {
		return r.wrap("put", err)
	}
	return nil
}

// maybeTrim queues the removal of expiry-set members that expired before
// now, at most once per trimEvery. now may lag the real clock (a restored
// session's LastSeenAt): that only trims less.
func (r *Redis) maybeTrim(ctx context.Context, p redis.Pipeliner, now time.Time) {
	n := unixMicro(now)
	last := r.lastTrim.Load()
	if n-last < trimEvery.Microseconds() || !r.lastTrim.CompareAndSwap(last, n) {
		return
	}
	p.ZRemRangeByScore(ctx, r.expKey(), "-inf", "("+strconv.FormatInt(n, 10))
}

// Get reads one session with HGETALL, in the next group-committed round.
func (r *Redis) Get(ctx context.Context, id string) (*Session, error) {
	op := r.batch.newOp(ctx)
	op.get, op.id = true, id
	return r.batch.do(op)
}

func decodeSession(id string, m map[string]string) (*Session, error) {
	if len(m) < fieldCount {
		return nil, fmt.Errorf("session %s: hash has %d of %d fields", id, len(m), fieldCount)
	}
	s := &Session{
		ID: id, UserID: m[fUser], Kind: Kind(m[fKind]), CSRFToken: m[fCSRF],
		Device: m[fDevice], IP: m[fIP], UserAgent: m[fUA], SecretHash: []byte(m[fSecret]),
	}
	if err := json.Unmarshal([]byte(m[fScopes]), &s.Scopes); err != nil {
		return nil, fmt.Errorf("session %s: scopes: %w", id, err)
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{
		{fCreated, &s.CreatedAt}, {fLastSeen, &s.LastSeenAt}, {fExpires, &s.ExpiresAt},
		{fAbsolute, &s.AbsoluteExpiresAt}, {fSyncedAt, &s.SyncedAt},
	} {
		v, err := strconv.ParseInt(m[f.name], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("session %s: %s: %w", id, f.name, err)
		}
		*f.dst = fromMicro(v)
	}
	return s, nil
}

// Touch slides one session in the next group-committed round: the touch
// script (which does nothing if the hash is gone) and ZADD XX GT on the
// expiry set (which never re-adds a member that Delete removed).
func (r *Redis) Touch(ctx context.Context, t Touch, ttl time.Duration) error {
	op := r.batch.newOp(ctx)
	op.id, op.t = t.ID, t
	op.ttlMS = max(ttl.Milliseconds(), 1) // PEXPIRE 0 would be a delete; 1 ms lets the key lapse
	_, err := r.batch.do(op)
	return err
}

// Delete removes the sessions, their index entries and expiry-set members
// in one pipeline (one DEL per key, so it works across cluster slots). With
// no ids it does nothing.
func (r *Redis) Delete(ctx context.Context, userID string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id
	}
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			p.Del(ctx, r.sessKey(id))
		}
		p.SRem(ctx, r.userKey(userID), members...)
		p.ZRem(ctx, r.expKey(), members...)
		return nil
	})
	if err != nil {
		return r.wrap("delete", err)
	}
	return nil
}

// UserSessions reads the user's index, then every session in one pipeline,
// and prunes index members whose hash has expired.
func (r *Redis) UserSessions(ctx context.Context, userID string) ([]*Session, error) {
	uk := r.userKey(userID)
	ids, err := r.rdb.SMembers(ctx, uk).Result()
	if err != nil {
		return nil, r.wrap("user sessions", err)
	}
	if len(ids) == 0 {
		return []*Session{}, nil
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	if _, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, r.sessKey(id))
		}
		return nil
	}); err != nil {
		return nil, r.wrap("user sessions", err)
	}
	out := make([]*Session, 0, len(ids))
	var dead []any
	for i, c := range cmds {
		m := c.Val()
		if len(m) == 0 {
			dead = append(dead, ids[i])
			continue
		}
		s, err := decodeSession(ids[i], m)
		if err != nil {
			return nil, r.wrap("user sessions", err)
		}
		out = append(out, s)
	}
	if len(dead) > 0 {
		// Best effort: a failed prune is retried by the next listing.
		_, _ = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.SRem(ctx, uk, dead...)
			p.ZRem(ctx, r.expKey(), dead...)
			return nil
		})
	}
	return out, nil
}

// Expiries reads both deadlines of every id in one pipeline of HMGET.
func (r *Redis) Expiries(ctx context.Context, ids []string) ([]Expiry, error) {
	out := make([]Expiry, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	cmds := make([]*redis.SliceCmd, len(ids))
	if _, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, r.sessKey(id), fExpires, fAbsolute)
		}
		return nil
	}); err != nil {
		return nil, r.wrap("expiries", err)
	}
	for i, c := range cmds {
		v := c.Val()
		e, a, ok := parseMicro(v[0]), parseMicro(v[1]), v[0] != nil && v[1] != nil
		if !ok {
			continue
		}
		out[i] = Expiry{OK: true, ExpiresAt: fromMicro(e), AbsoluteExpiresAt: fromMicro(a)}
	}
	return out, nil
}

func parseMicro(v any) int64 {
	s, _ := v.(string)
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// CountActive counts the expiry-set members that expire after now with
// ZCOUNT, trimming expired members first (at most once per trimEvery).
func (r *Redis) CountActive(ctx context.Context, now time.Time) (int64, error) {
	var count *redis.IntCmd
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		r.maybeTrim(ctx, p, now)
		count = p.ZCount(ctx, r.expKey(), "("+micros(now), "+inf")
		return nil
	})
	if err != nil {
		return 0, r.wrap("count", err)
	}
	return count.Val(), nil
}

// Ping reports whether Redis answers.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.rdb.Ping(ctx).Err(); err != nil {
		return r.wrap("ping", err)
	}
	return nil
}

// DeliverRevocations deletes the hot copies of ds and then publishes their
// events. On one Redis (or Sentinel) the pipeline runs in order on one
// connection, so every delete is done before the first event goes out, in
// one round trip. A cluster pipeline runs per node in parallel, so there
// the deletes take a round trip of their own first.
func (r *Redis) DeliverRevocations(ctx context.Context, ds []Delivery) error {
	payloads := make([][]byte, len(ds))
	for i, d := range ds {
		b, err := json.Marshal(d.Event)
		if err != nil {
			return r.wrap("publish", err)
		}
		payloads[i] = b
	}
	deletes := func(p redis.Pipeliner) {
		for _, d := range ds {
			if len(d.IDs) == 0 {
				continue
			}
			members := make([]any, len(d.IDs))
			for i, id := range d.IDs {
				members[i] = id
				p.Del(ctx, r.sessKey(id))
			}
			p.SRem(ctx, r.userKey(d.UserID), members...)
			p.ZRem(ctx, r.expKey(), members...)
		}
	}
	publishes := func(p redis.Pipeliner) {
		for _, b := range payloads {
			p.Publish(ctx, r.channel(), b)
		}
	}
	if _, cluster := r.rdb.(*redis.ClusterClient); cluster {
		if _, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { deletes(p); return nil }); err != nil {
			return r.wrap("delete", err)
		}
		deletes = func(redis.Pipeliner) {}
	}
	if _, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { deletes(p); publishes(p); return nil }); err != nil {
		return r.wrap("deliver revocations", err)
	}
	return nil
}

// Publish sends e as JSON on <prefix>revocations. Pub/sub is
// fire-and-forget: hubs that miss it catch up with their sweep.
func (r *Redis) Publish(ctx context.Context, e Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return r.wrap("publish", err)
	}
	if err := r.rdb.Publish(ctx, r.channel(), b).Err(); err != nil {
		return r.wrap("publish", err)
	}
	return nil
}
