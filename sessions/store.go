package sessions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/sessionhub/sessionhub/internal/groupcommit"
)

// Config tunes a Store. Zero fields take the defaults named on each.
type Config struct {
	IdleTTL time.Duration // sliding idle timeout; default 12h
	MaxAge  time.Duration // absolute lifetime, never slid past; default 168h
	// SyncInterval is the least time between two write-behind updates of
	// one session's sliding fields in the durable backend; default 5m, so
	// 100 requests a minute cost at most one UPDATE (SECURITY.md item 11).
	SyncInterval time.Duration
	// NegativeTTL is how long an id unknown to both backends is answered
	// from memory; default 1m (SECURITY.md item 6).
	NegativeTTL time.Duration
	// HotTimeout bounds one hot-backend call; default 1s, so a hung Redis
	// degrades to Postgres instead of hanging a request.
	HotTimeout time.Duration
	// DurableTimeout bounds one durable call; default 3s, so a write that
	// needs a dead Postgres answers 503 within API.md's 5 s.
	DurableTimeout time.Duration
	Now            func() time.Time // default time.Now
	Logger         *slog.Logger     // default slog.Default()
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.IdleTTL, 12*time.Hour)
	def(&c.MaxAge, 168*time.Hour)
	def(&c.SyncInterval, 5*time.Minute)
	def(&c.NegativeTTL, time.Minute)
	def(&c.HotTimeout, time.Second)
	def(&c.DurableTimeout, 3*time.Second)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Stats are the Store's counters since it was made, for metrics.
type Stats struct {
	UnknownTokens  uint64 // tokens refused because no live session has their id
	Restored       uint64 // sessions put back into the hot backend from the durable one
	HotFailures    uint64 // hot calls that failed and fell back
	DurableQueries uint64 // durable reads made by Authenticate and Status
}

// Store is the session store: hot backend for reads, durable backend of
// record, publisher for revocations. It is safe for concurrent use.
type Store struct {
	cfg     Config
	hot     Hot
	durable Durable
	pub     Publisher
	log     *slog.Logger

	breaker hotBreaker
	flight  singleflight.Group
	neg     negativeCache
	syncs   chan Touch
	pendMu  sync.Mutex
	pending []pendingRevocation
	revokes *groupcommit.Group[*revokeCall]
	// onExpire is told the sessions each expiry pass marks (OnExpire).
	onExpire atomic.Pointer[func(context.Context, []*Session)]

	unknown, restored, hotFail, durableQ atomic.Uint64
}

type pendingRevocation struct {
	userID string
	ids    []string
	event  Event
	hotOK  bool
}

// maxPending bounds the retry queue of revocations whose hot delete or
// publish failed; beyond it the periodic hub sweep is the safety net.
const maxPending = 10000

// New returns a Store over the given backends.
func New(cfg Config, hot Hot, durable Durable, pub Publisher) (*Store, error) {
	cfg.setDefaults()
	if hot == nil || durable == nil || pub == nil {
		return nil, errors.New("sessions: New needs a hot backend, a durable backend and a publisher")
	}
	if cfg.MaxAge < cfg.IdleTTL {
		return nil, fmt.Errorf("sessions: max age %s is shorter than the idle TTL %s", cfg.MaxAge, cfg.IdleTTL)
	}
	s := &Store{
		cfg: cfg, hot: hot, durable: durable, pub: pub, log: cfg.Logger,
		neg: negativeCache{m: map[string]time.Time{}},
		// syncs is buffered so that Authenticate never waits on Postgres;
		// 4096 pending writes is seconds of traffic for one node.
		syncs: make(chan Touch, 4096),
	}
	s.revokes = newRevokeGroup(s)
	return s, nil
}

// Config returns the effective configuration.
func (s *Store) Config() Config { return s.cfg }

// Stats returns the counters.
func (s *Store) Stats() Stats {
	return Stats{s.unknown.Load(), s.restored.Load(), s.hotFail.Load(), s.durableQ.Load()}
}

// NewSession describes a session to create.
type NewSession struct {
	UserID    string
	Kind      Kind
	Scopes    []string
	Device    string
	IP        string
	UserAgent string
}

// Create records a new session, durable first, and returns it with its
// token. The token's secret exists nowhere else: hand it to the client.
func (s *Store) Create(ctx context.Context, n NewSession) (*Session, Token, error) {
	if n.UserID == "" || !n.Kind.Valid() {
		return nil, Token{}, fmt.Errorf("sessions: create: bad user or kind %q", n.Kind)
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond) // Postgres precision
	tok := NewToken()
	sess := &Session{
		ID: tok.ID, UserID: n.UserID, Kind: n.Kind, Scopes: n.Scopes,
		CSRFToken: RandomString(csrfBytes), Device: n.Device, IP: n.IP, UserAgent: n.UserAgent,
		CreatedAt: now, LastSeenAt: now,
		ExpiresAt:         now.Add(s.cfg.IdleTTL),
		AbsoluteExpiresAt: now.Add(s.cfg.MaxAge),
		SecretHash:        tok.Hash(),
		SyncedAt:          now,
	}
	if sess.Scopes == nil {
		sess.Scopes = []string{}
	}
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DurableTimeout)
	defer cancel()
	if err := s.durable.Insert(dctx, sess); err != nil {
		return nil, Token{}, fmt.Errorf("sessions: create: %w", err)
	}
	if err := s.hotPut(ctx, sess); err != nil {
		// Postgres has it: reads fall back there until Redis is back.
		s.log.Warn("session created without hot copy", "session_id", sess.ID, "err", err)
	}
	return sess, tok, nil
}

func (s *Store) hotPut(ctx context.Context, sess *Session) error {
	return s.hotDo(ctx, func(ctx context.Context) error {
		return s.hot.Put(ctx, sess, sess.MaxAge(s.cfg.Now()))
	})
}

func (s *Store) hotDelete(ctx context.Context, userID string, ids ...string) error {
	return s.hotDo(ctx, func(ctx context.Context) error { return s.hot.Delete(ctx, userID, ids...) })
}

// Authenticate parses a raw "<id>.<secret>" token, finds its live session,
// compares the secret in constant time and slides the expiry. Unknown,
// revoked, expired and mismatched tokens all return ErrNotFound or
// ErrInvalidToken and write nothing.
func (s *Store) Authenticate(ctx context.Context, raw string) (*Session, error) {
	tok, err := ParseToken(raw)
	if err != nil {
		s.unknown.Add(1)
		return nil, err
	}
	sess, err := s.lookup(ctx, tok.ID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			s.unknown.Add(1)
		}
		return nil, err
	}
	if !sess.MatchSecret(tok) {
		s.unknown.Add(1)
		return nil, ErrInvalidToken
	}
	s.Touch(ctx, sess)
	return sess, nil
}

// Lookup returns the live session with this public id, restoring it into
// the hot backend when only the durable one has it. It does not slide.
func (s *Store) Lookup(ctx context.Context, id string) (*Session, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	return s.lookup(ctx, id)
}

func (s *Store) lookup(ctx context.Context, id string) (*Session, error) {
	now := s.cfg.Now()
	if s.neg.has(id, now) {
		return nil, ErrNotFound
	}
	var sess *Session
	err := s.hotDo(ctx, func(ctx context.Context) (err error) {
		sess, err = s.hot.Get(ctx, id)
		return err
	})
	switch {
	case err == nil:
		if !sess.Live(now) {
			// Idle or absolute expiry reached on our clock before the
			// hot TTL fired: remove it so nothing reads it again.
			_ = s.hotDelete(ctx, sess.UserID, sess.ID)
			return nil, ErrNotFound
		}
		return sess, nil
	case errors.Is(err, ErrNotFound):
		return s.restore(ctx, id, true)
	default: // hotDo counted and logged it
		return s.restore(ctx, id, false)
	}
}

// restore reads id from the durable backend once per id at a time
// (singleflight) and puts a live session back into the hot backend.
func (s *Store) restore(ctx context.Context, id string, hotUp bool) (*Session, error) {
	v, err, _ := s.flight.Do(id, func() (any, error) {
		// A flight for id that ended between our negative-cache check and
		// this one has just cached the miss: without this re-check a
		// concurrent flood of one unknown id would read Postgres twice.
		if s.neg.has(id, s.cfg.Now()) {
			return nil, ErrNotFound
		}
		s.durableQ.Add(1)
		dctx, cancel := context.WithTimeout(ctx, s.cfg.DurableTimeout)
		defer cancel()
		sess, err := s.durable.Get(dctx, id)
		now := s.cfg.Now()
		if errors.Is(err, ErrNotFound) || (err == nil && !sess.Live(now)) {
			s.neg.add(id, now.Add(s.cfg.NegativeTTL))
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("sessions: durable read: %w", err)
		}
		if !hotUp {
			return sess, nil
		}
		if err := s.hotPut(ctx, sess); err != nil {
			return sess, nil
		}
		// A revocation may have landed between our read and our put; its
		// hot delete ran before our put. Read again and undo if so.
		again, err := s.durable.Get(dctx, id)
		if err == nil && !again.Live(now) {
			_ = s.hotDelete(ctx, sess.UserID, id)
			return nil, ErrNotFound
		}
		s.restored.Add(1)
		s.log.Info("session restored from durable store", "session_id", id)
		return sess, nil
	})
	if err != nil {
		return nil, err
	}
	// Callers that joined the flight share its result, and Authenticate's
	// Touch updates a session in place: each caller gets its own copy.
	cp := *v.(*Session)
	return &cp, nil
}

// Touch slides sess's idle expiry (capped by the absolute lifetime) in the
// hot backend and, at most once per SyncInterval, queues a write-behind to
// the durable backend. It updates sess in place. Failures are logged, never
// returned: a missed slide costs the user nothing now.
func (s *Store) Touch(ctx context.Context, sess *Session) {
	now := s.cfg.Now().UTC()
	sess.LastSeenAt = now
	sess.ExpiresAt = minTime(now.Add(s.cfg.IdleTTL), sess.AbsoluteExpiresAt)
	t := Touch{ID: sess.ID, LastSeenAt: now, ExpiresAt: sess.ExpiresAt}
	if now.Sub(sess.SyncedAt) >= s.cfg.SyncInterval {
		select {
		case s.syncs <- t:
			t.SyncedAt = now
			sess.SyncedAt = now
		default: // queue full: the next request will try again
		}
	}
	// ErrNotFound (revoked or lapsed meanwhile) leaves nothing to slide.
	_ = s.hotDo(ctx, func(ctx context.Context) error { return s.hot.Touch(ctx, t, sess.MaxAge(now)) })
}

// Status reports, for each id, whether its session is alive, revoked or
// expired, reading the hot backend once and the durable one only for ids the
// hot one lacks. Hubs call it at handshake and in their sweeps.
func (s *Store) Status(ctx context.Context, ids []string) ([]Status, error) {
	out := make([]Status, len(ids))
	now := s.cfg.Now()
	var exp []Expiry
	err := s.hotDo(ctx, func(ctx context.Context) (err error) {
		exp, err = s.hot.Expiries(ctx, ids)
		return err
	})
	var missing []int
	if err != nil {
		for i := range ids {
			missing = append(missing, i)
		}
	} else {
		for i, e := range exp {
			switch {
			case !e.OK:
				missing = append(missing, i)
			case now.Before(e.ExpiresAt) && now.Before(e.AbsoluteExpiresAt):
				out[i] = StatusAlive
			default:
				out[i] = StatusExpired
			}
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	want := make([]string, len(missing))
	for j, i := range missing {
		want[j] = ids[i]
	}
	s.durableQ.Add(1)
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DurableTimeout)
	defer cancel()
	rows, derr := s.durable.GetMany(dctx, want)
	if derr != nil {
		return nil, fmt.Errorf("sessions: status: %w", derr)
	}
	byID := make(map[string]*Session, len(rows))
	for _, r := range rows {
		byID[r.ID] = r
	}
	for _, i := range missing {
		r := byID[ids[i]]
		switch {
		case r == nil:
			out[i] = StatusRevoked
		case !r.RevokedAt.IsZero():
			out[i] = revokedStatus(r.RevokeReason)
		case r.Live(now):
			out[i] = StatusAlive
			if err == nil { // hot is up but lost it: put it back
				if perr := s.hotPut(ctx, r); perr == nil {
					s.restored.Add(1)
				}
			}
		default:
			out[i] = StatusExpired
		}
	}
	return out, nil
}

// List returns userID's live sessions, from the hot backend when it is up.
func (s *Store) List(ctx context.Context, userID string) ([]*Session, error) {
	now := s.cfg.Now()
	var list []*Session
	err := s.hotDo(ctx, func(ctx context.Context) (err error) {
		list, err = s.hot.UserSessions(ctx, userID)
		return err
	})
	if err != nil {
		dctx, cancel := context.WithTimeout(ctx, s.cfg.DurableTimeout)
		defer cancel()
		list, err = s.durable.ListLive(dctx, userID, now)
		if err != nil {
			return nil, fmt.Errorf("sessions: list: %w", err)
		}
	}
	live := list[:0]
	for _, x := range list {
		if x.Live(now) {
			live = append(live, x)
		}
	}
	return live, nil
}

// Revocation says why and how to revoke.
type Revocation struct {
	Reason Reason
	// Except, for RevokeUser, keeps one session (a password change keeps
	// the session that made it).
	Except string
	// RequestID asks hubs to acknowledge the sockets they close.
	RequestID string
}

// Revoke ends one session: durable revoked_at first, then the hot delete,
// then the event. It returns the revoked session, or ErrNotFound when no
// live session has this id. Concurrent calls are group-committed: one
// statement, one commit and one hot round trip for all of them.
func (s *Store) Revoke(ctx context.Context, id string, r Revocation) (*Session, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	return s.revokeGrouped(ctx, &revokeCall{
		ctx: ctx, item: RevokeItem{ID: id, Reason: r.Reason, At: s.cfg.Now().UTC()},
		requestID: r.RequestID, done: make(chan struct{}),
	})
}

// RevokeUser ends every session of userID (all but r.Except when set) and
// returns the revoked ids. Without Except it publishes one user event (hubs
// close every socket of the user with 4002); with Except it publishes one
// session event per revoked session, so the kept session's sockets live.
func (s *Store) RevokeUser(ctx context.Context, userID string, r Revocation) ([]string, error) {
	now := s.cfg.Now().UTC()
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DurableTimeout)
	defer cancel()
	ids, err := s.durable.RevokeUser(dctx, userID, r.Reason, now, r.Except)
	if err != nil {
		return nil, fmt.Errorf("sessions: revoke user: %w", err)
	}
	if r.Except == "" {
		s.afterRevoke(ctx, pendingRevocation{
			userID: userID, ids: ids,
			event: Event{Kind: EventUser, UserID: userID, Reason: r.Reason, IssuedAt: now, RequestID: r.RequestID},
		})
		return ids, nil
	}
	ps := make([]pendingRevocation, len(ids))
	for i, id := range ids {
		ps[i] = pendingRevocation{
			userID: userID, ids: []string{id},
			event: Event{Kind: EventSession, SessionID: id, UserID: userID, Reason: r.Reason, IssuedAt: now, RequestID: r.RequestID},
		}
	}
	s.afterRevokeAll(ctx, ps)
	return ids, nil
}

// afterRevoke is afterRevokeAll of one revocation.
func (s *Store) afterRevoke(ctx context.Context, p pendingRevocation) {
	s.afterRevokeAll(ctx, []pendingRevocation{p})
}

func (s *Store) deliver(ctx context.Context, p *pendingRevocation) error {
	if !p.hotOK {
		if err := s.hotDelete(ctx, p.userID, p.ids...); err != nil {
			return err
		}
		p.hotOK = true
	}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.HotTimeout)
	defer cancel()
	return s.pub.Publish(pctx, p.event)
}

// CountActive returns the number of live sessions, from the hot backend.
func (s *Store) CountActive(ctx context.Context) (int64, error) {
	var n int64
	err := s.hotDo(ctx, func(ctx context.Context) (err error) {
		n, err = s.hot.CountActive(ctx, s.cfg.Now())
		return err
	})
	return n, err
}

// Health pings both backends; a nil error means reachable.
func (s *Store) Health(ctx context.Context) (hot, durable error) {
	hctx, cancel := context.WithTimeout(ctx, s.cfg.HotTimeout)
	defer cancel()
	dctx, cancel2 := context.WithTimeout(ctx, s.cfg.DurableTimeout)
	defer cancel2()
	return s.hot.Ping(hctx), s.durable.Ping(dctx)
}

// Run writes behind the sliding fields and retries undelivered revocations
// until ctx ends, then flushes what it holds. Call it once per Store.
func (s *Store) Run(ctx context.Context) error {
	// flushEvery bounds how stale Postgres's last_seen_at may be beyond the
	// SyncInterval throttle, and how soon a queued revocation is retried.
	const flushEvery = time.Second
	// expireEvery spaces the expiry passes: expired sessions stop
	// validating at once anyway; this only records them and closes their
	// sockets before the hubs' own sweep would.
	const expireEvery = time.Minute
	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	lastExpire := time.Now()
	var batch []Touch
	flush := func(ctx context.Context) {
		if len(batch) == 0 {
			return
		}
		dctx, cancel := context.WithTimeout(ctx, s.cfg.DurableTimeout)
		defer cancel()
		if err := s.durable.Sync(dctx, batch); err != nil {
			s.log.Warn("write-behind of session expiry failed", "sessions", len(batch), "err", err)
		}
		batch = batch[:0]
	}
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case t := <-s.syncs:
					batch = append(batch, t)
				default:
					flush(context.WithoutCancel(ctx))
					return nil
				}
			}
		case t := <-s.syncs:
			batch = append(batch, t)
			if len(batch) >= 500 { // one statement per 500 rows keeps it short
				flush(ctx)
			}
		case <-tick.C:
			s.probeHot(ctx)
			flush(ctx)
			s.retryPending(ctx)
			s.neg.sweep(s.cfg.Now())
			if time.Since(lastExpire) >= expireEvery {
				lastExpire = time.Now()
				if _, err := s.ExpireDue(ctx); err != nil {
					s.log.Warn("expiry pass failed", "err", err)
				}
			}
		}
	}
}

func (s *Store) retryPending(ctx context.Context) {
	s.pendMu.Lock()
	work := s.pending
	s.pending = nil
	s.pendMu.Unlock()
	keep, _ := s.deliverAll(ctx, work)
	if len(keep) > 0 {
		s.pendMu.Lock()
		s.pending = append(keep, s.pending...)
		s.pendMu.Unlock()
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// negativeCache remembers ids that no backend knows, so a flood of random
// tokens costs one durable read per id per NegativeTTL.
// Every Authenticate reads it, so reads share the lock.
type negativeCache struct {
	mu sync.RWMutex
	m  map[string]time.Time
}

// maxNegative bounds the cache's memory (~100 B an entry); past it the
// cache starts over, which costs one read per id again, never correctness.
const maxNegative = 100_000

func (c *negativeCache) has(id string, now time.Time) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	until, ok := c.m[id]
	return ok && now.Before(until)
}

func (c *negativeCache) add(id string, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxNegative {
		clear(c.m)
	}
	c.m[id] = until
}

func (c *negativeCache) sweep(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, until := range c.m {
		if !now.Before(until) {
			delete(c.m, id)
		}
	}
}

// revokedStatus tells a hub which close code a revoked session's sockets
// get when a sweep, not the event, finds it: the reason is on the row.
func revokedStatus(r Reason) Status {
	switch r {
	case ReasonExpired:
		return StatusExpired
	case ReasonLogoutAll:
		return StatusLoggedOut
	default:
		return StatusRevoked
	}
}
