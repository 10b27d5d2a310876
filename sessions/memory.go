package sessions

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Memory is the embedded single-node default: Hot, Durable and Publisher in
// one mutex-protected value, on the clock it was given. Everything is lost
// when the process ends.
//
// One record per session serves both roles. The durable role sees every
// record (revoked ones included) until its absolute expiry passes; the hot
// role sees a record only between Put and Delete and while its TTL, kept on
// the injected clock, has not run out — as Redis would. Get answers for the
// hot role once Memory has been used as one (a Put), and for the durable
// role otherwise, so Memory is correct in either role or in both.
type Memory struct {
	now func() time.Time

	mu        sync.Mutex
	recs      map[string]*memRecord
	byUser    map[string]map[string]struct{}
	servesHot bool
	writes    int // since the last purge
	subs      map[uint64]func(Event)
	nextSub   uint64
}

type memRecord struct {
	s        Session   // the durable row; hot touches update it in place
	hotUntil time.Time // zero: not in the hot role (never put, or deleted)
}

// memPurgeEvery spaces out the sweep that drops records past their
// absolute expiry: O(sessions) once per that many writes keeps writes O(1)
// amortised.
const memPurgeEvery = 1024

var _ interface {
	Hot
	Durable
	Publisher
} = (*Memory)(nil)

// NewMemory returns an empty Memory on the clock now (time.Now when nil).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{
		now:    now,
		recs:   map[string]*memRecord{},
		byUser: map[string]map[string]struct{}{},
		subs:   map[uint64]func(Event){},
	}
}

func cloneSession(s *Session) *Session {
	c := *s
	c.Scopes = slices.Clone(s.Scopes)
	c.SecretHash = slices.Clone(s.SecretHash)
	if c.Scopes == nil {
		c.Scopes = []string{}
	}
	return &c
}

func (r *memRecord) hot(now time.Time) bool {
	return !r.hotUntil.IsZero() && now.Before(r.hotUntil)
}

// add stores a new record and indexes it; the caller holds mu.
func (m *Memory) add(s *Session) *memRecord {
	r := &memRecord{s: *cloneSession(s)}
	m.recs[s.ID] = r
	ids := m.byUser[s.UserID]
	if ids == nil {
		ids = map[string]struct{}{}
		m.byUser[s.UserID] = ids
	}
	ids[s.ID] = struct{}{}
	m.writes++
	if m.writes >= memPurgeEvery {
		m.purge(m.now())
	}
	return r
}

// purge drops records that can never be live again; the caller holds mu.
func (m *Memory) purge(now time.Time) {
	m.writes = 0
	for id, r := range m.recs {
		if !now.Before(r.s.AbsoluteExpiresAt) {
			delete(m.recs, id)
			if ids := m.byUser[r.s.UserID]; ids != nil {
				delete(ids, id)
				if len(ids) == 0 {
					delete(m.byUser, r.s.UserID)
				}
			}
		}
	}
}

// Insert records a new session (durable role).
func (m *Memory) Insert(_ context.Context, s *Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.recs[s.ID]; ok {
		return fmt.Errorf("sessions: memory insert: session %s exists", s.ID)
	}
	m.add(s)
	return nil
}

// Put makes s hot for ttl (hot role). A revocation already recorded is
// kept: the durable role is the record of truth.
func (m *Memory) Put(_ context.Context, s *Session, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.servesHot = true
	if ttl <= 0 {
		return nil
	}
	r := m.recs[s.ID]
	if r == nil {
		r = m.add(s)
	} else {
		revokedAt, reason := r.s.RevokedAt, r.s.RevokeReason
		r.s = *cloneSession(s)
		if !revokedAt.IsZero() {
			r.s.RevokedAt, r.s.RevokeReason = revokedAt, reason
		}
	}
	r.hotUntil = m.now().Add(ttl)
	return nil
}

// Get returns a copy of the session: as the hot role sees it once Memory
// serves that role, else as the durable role does (see Memory).
func (m *Memory) Get(_ context.Context, id string) (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.recs[id]
	if r == nil || (m.servesHot && !r.hot(m.now())) {
		return nil, ErrNotFound
	}
	return cloneSession(&r.s), nil
}

// Touch slides a hot session; a deleted or lapsed one stays gone.
func (m *Memory) Touch(_ context.Context, t Touch, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	r := m.recs[t.ID]
	if r == nil || !r.hot(now) {
		return ErrNotFound
	}
	if t.LastSeenAt.Before(r.s.LastSeenAt) {
		return nil // an older touch lost a race: keep the newer one
	}
	r.s.LastSeenAt, r.s.ExpiresAt = t.LastSeenAt, t.ExpiresAt
	if !t.SyncedAt.IsZero() {
		r.s.SyncedAt = t.SyncedAt
	}
	r.hotUntil = now.Add(max(ttl, time.Nanosecond))
	return nil
}

// Delete takes the sessions out of the hot role; their durable records
// stay until their absolute expiry.
func (m *Memory) Delete(_ context.Context, _ string, ids ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		if r := m.recs[id]; r != nil {
			r.hotUntil = time.Time{}
		}
	}
	return nil
}

// userRecords returns userID's records matching keep, oldest first; the
// caller holds mu.
func (m *Memory) userRecords(userID string, keep func(*memRecord) bool) []*Session {
	out := []*Session{}
	for id := range m.byUser[userID] {
		if r := m.recs[id]; r != nil && keep(r) {
			out = append(out, cloneSession(&r.s))
		}
	}
	slices.SortFunc(out, func(a, b *Session) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// UserSessions returns userID's hot sessions.
func (m *Memory) UserSessions(_ context.Context, userID string) ([]*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	return m.userRecords(userID, func(r *memRecord) bool { return r.hot(now) }), nil
}

// Expiries returns the deadlines of the hot sessions among ids.
func (m *Memory) Expiries(_ context.Context, ids []string) ([]Expiry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	out := make([]Expiry, len(ids))
	for i, id := range ids {
		if r := m.recs[id]; r != nil && r.hot(now) {
			out[i] = Expiry{OK: true, ExpiresAt: r.s.ExpiresAt, AbsoluteExpiresAt: r.s.AbsoluteExpiresAt}
		}
	}
	return out, nil
}

// CountActive counts hot sessions that expire after now.
func (m *Memory) CountActive(_ context.Context, now time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	clock := m.now()
	for _, r := range m.recs {
		if r.hot(clock) && now.Before(r.s.ExpiresAt) && now.Before(r.s.AbsoluteExpiresAt) {
			n++
		}
	}
	return n, nil
}

// GetMany returns the records among ids, revoked ones included.
func (m *Memory) GetMany(_ context.Context, ids []string) ([]*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []*Session{}
	for _, id := range ids {
		if r := m.recs[id]; r != nil {
			out = append(out, cloneSession(&r.s))
		}
	}
	return out, nil
}

// Sync writes behind sliding fields; with Memory in both roles the hot
// touch has already written them, so this only ever moves them forward.
func (m *Memory) Sync(_ context.Context, touches []Touch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range touches {
		r := m.recs[t.ID]
		if r == nil || !r.s.RevokedAt.IsZero() {
			continue
		}
		if t.LastSeenAt.After(r.s.LastSeenAt) {
			r.s.LastSeenAt = t.LastSeenAt
		}
		if t.ExpiresAt.After(r.s.ExpiresAt) {
			r.s.ExpiresAt = minTime(t.ExpiresAt, r.s.AbsoluteExpiresAt)
		}
	}
	return nil
}

// Revoke marks one unrevoked session revoked.
func (m *Memory) Revoke(_ context.Context, id string, reason Reason, at time.Time) (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.recs[id]
	if r == nil || !r.s.RevokedAt.IsZero() {
		return nil, ErrNotFound
	}
	r.s.RevokedAt, r.s.RevokeReason = at, reason
	return cloneSession(&r.s), nil
}

// RevokeMany marks those of items still unrevoked revoked.
func (m *Memory) RevokeMany(_ context.Context, items []RevokeItem) ([]*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []*Session{}
	for _, it := range items {
		r := m.recs[it.ID]
		if r == nil || !r.s.RevokedAt.IsZero() {
			continue
		}
		r.s.RevokedAt, r.s.RevokeReason = it.At, it.Reason
		out = append(out, cloneSession(&r.s))
	}
	return out, nil
}

// RevokeUser marks every unrevoked session of userID but except revoked.
func (m *Memory) RevokeUser(_ context.Context, userID string, reason Reason, at time.Time, except string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := []string{}
	for id := range m.byUser[userID] {
		r := m.recs[id]
		if r == nil || id == except || !r.s.RevokedAt.IsZero() {
			continue
		}
		r.s.RevokedAt, r.s.RevokeReason = at, reason
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// DueForExpiry returns unrevoked records whose expiry is before before.
func (m *Memory) DueForExpiry(_ context.Context, before time.Time, limit int) ([]*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []*Session{}
	for _, r := range m.recs {
		if r.s.RevokedAt.IsZero() && r.s.ExpiresAt.Before(before) {
			out = append(out, cloneSession(&r.s))
		}
	}
	slices.SortFunc(out, func(a, b *Session) int { return a.ExpiresAt.Compare(b.ExpiresAt) })
	return out[:min(len(out), limit)], nil
}

// MarkExpired revokes those of ids still unrevoked at their expiry.
func (m *Memory) MarkExpired(_ context.Context, ids []string) ([]*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []*Session{}
	for _, id := range ids {
		r := m.recs[id]
		if r == nil || !r.s.RevokedAt.IsZero() {
			continue
		}
		r.s.RevokedAt, r.s.RevokeReason = minTime(r.s.ExpiresAt, r.s.AbsoluteExpiresAt), ReasonExpired
		out = append(out, cloneSession(&r.s))
	}
	return out, nil
}

// ListLive returns userID's unrevoked, unexpired sessions, oldest first.
func (m *Memory) ListLive(_ context.Context, userID string, now time.Time) ([]*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.userRecords(userID, func(r *memRecord) bool { return r.s.Live(now) }), nil
}

// Ping always succeeds.
func (m *Memory) Ping(context.Context) error { return nil }

// Publish calls every subscriber with e, synchronously and outside the
// lock; subscribers must return quickly (the hub only enqueues closes).
func (m *Memory) Publish(_ context.Context, e Event) error {
	m.mu.Lock()
	fns := make([]func(Event), 0, len(m.subs))
	for _, fn := range m.subs {
		fns = append(fns, fn)
	}
	m.mu.Unlock()
	for _, fn := range fns {
		fn(e)
	}
	return nil
}

// Subscribe registers fn for every published Event until cancel is called;
// cancel is idempotent.
func (m *Memory) Subscribe(fn func(Event)) (cancel func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := m.nextSub
	m.nextSub++
	m.subs[id] = fn
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.subs, id)
	}
}
