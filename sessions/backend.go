package sessions

import (
	"context"
	"time"
)

// Hot is the fast session backend every request reads: Redis in production
// (redis.go), memory in the embedded default (memory.go). Every key it writes
// carries the configured prefix. Implementations return ErrNotFound for an
// absent session and wrap any other failure; the Store treats those as "hot
// backend down" and falls back to the Durable backend.
type Hot interface {
	// Put stores s with the given TTL and adds it to its user's index.
	Put(ctx context.Context, s *Session, ttl time.Duration) error
	// Get returns the stored session or ErrNotFound.
	Get(ctx context.Context, id string) (*Session, error)
	// Touch rewrites LastSeenAt, ExpiresAt, SyncedAt (when not zero) and
	// the TTL of an existing session. It must never recreate a session
	// deleted meanwhile (Redis: check existence in the same script).
	Touch(ctx context.Context, t Touch, ttl time.Duration) error
	// Delete removes the sessions and their entries in userID's index.
	Delete(ctx context.Context, userID string, ids ...string) error
	// UserSessions returns the stored sessions of userID, pruning index
	// entries whose session is gone.
	UserSessions(ctx context.Context, userID string) ([]*Session, error)
	// Expiries returns, in one round trip, each id's ExpiresAt and
	// AbsoluteExpiresAt; ok is false for an absent session.
	Expiries(ctx context.Context, ids []string) ([]Expiry, error)
	// CountActive returns how many stored sessions expire after now.
	CountActive(ctx context.Context, now time.Time) (int64, error)
	// Ping reports whether the backend is reachable.
	Ping(ctx context.Context) error
}

// Durable is the backend of record: Postgres in production (postgres.go),
// memory in the embedded default. Revocation is written here first.
// Implementations return ErrNotFound for an absent row and wrap
// ErrUnavailable when the database cannot be reached.
type Durable interface {
	// Insert records a new session.
	Insert(ctx context.Context, s *Session) error
	// Get returns the session row, revoked or expired ones included.
	Get(ctx context.Context, id string) (*Session, error)
	// GetMany returns the rows that exist among ids, in any order.
	GetMany(ctx context.Context, ids []string) ([]*Session, error)
	// Sync writes behind the sliding fields of several sessions at once.
	Sync(ctx context.Context, touches []Touch) error
	// Revoke marks one unrevoked session revoked and returns it, or
	// ErrNotFound when there is no such unrevoked session.
	Revoke(ctx context.Context, id string, reason Reason, at time.Time) (*Session, error)
	// RevokeMany is Revoke of several sessions in one transaction: it
	// returns, in any order, those it revoked (the others were absent or
	// already revoked). Each id appears at most once in items.
	RevokeMany(ctx context.Context, items []RevokeItem) ([]*Session, error)
	// RevokeUser marks every unrevoked session of userID (but except, when
	// not empty) revoked and returns their ids.
	RevokeUser(ctx context.Context, userID string, reason Reason, at time.Time, except string) ([]string, error)
	// DueForExpiry returns up to limit unrevoked sessions whose expiry
	// (ExpiresAt, which never exceeds AbsoluteExpiresAt) is before before,
	// earliest first.
	DueForExpiry(ctx context.Context, before time.Time, limit int) ([]*Session, error)
	// MarkExpired marks those of ids still unrevoked as revoked with
	// ReasonExpired at the moment they expired, and returns them.
	MarkExpired(ctx context.Context, ids []string) ([]*Session, error)
	// ListLive returns userID's unrevoked, unexpired sessions.
	ListLive(ctx context.Context, userID string, now time.Time) ([]*Session, error)
	// Ping reports whether the backend is reachable.
	Ping(ctx context.Context) error
}

// Publisher delivers revocation events to every hub: Redis PUBLISH on
// <prefix>revocations in production, an in-process fan-out in the embedded
// default.
type Publisher interface {
	Publish(ctx context.Context, e Event) error
}

// RevocationChannel is the pub/sub channel, after the prefix, on which
// Events are published as JSON.
const RevocationChannel = "revocations"

// Touch carries the sliding fields of one session.
type Touch struct {
	ID         string
	LastSeenAt time.Time
	ExpiresAt  time.Time
	SyncedAt   time.Time // zero: leave unchanged
}

// Expiry is the hot backend's view of one session's deadlines.
type Expiry struct {
	OK                bool
	ExpiresAt         time.Time
	AbsoluteExpiresAt time.Time
}
