package sessions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is the Durable backend on the sessions table of
// migrations/0001_init.up.sql. Every method is one statement, so one
// transaction.
type Postgres struct {
	pool *pgxpool.Pool
}

var _ Durable = (*Postgres)(nil)

// NewPostgres returns the Postgres backend on pool (whose search_path picks
// the schema).
func NewPostgres(pool *pgxpool.Pool) *Postgres { return &Postgres{pool: pool} }

// sessionCols is the column list every read returns, in scanSession's
// order.
const sessionCols = `id, user_id::text, kind, secret_hash, csrf_token, scopes, device, ip,
	user_agent, created_at, last_seen_at, expires_at, absolute_expires_at, revoked_at,
	coalesce(revoke_reason, '')`

const sqlInsert = `
INSERT INTO sessions (id, user_id, kind, secret_hash, csrf_token, scopes, device, ip,
	user_agent, created_at, last_seen_at, expires_at, absolute_expires_at)
VALUES ($1, $2::uuid, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`

// Insert records a new session.
func (p *Postgres) Insert(ctx context.Context, s *Session) error {
	scopes := s.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	_, err := p.pool.Exec(ctx, sqlInsert, s.ID, s.UserID, string(s.Kind), s.SecretHash,
		s.CSRFToken, scopes, s.Device, s.IP, s.UserAgent, s.CreatedAt, s.LastSeenAt,
		s.ExpiresAt, s.AbsoluteExpiresAt)
	return pgErr("insert", err)
}

const sqlGet = `SELECT ` + sessionCols + ` FROM sessions WHERE id = $1`

// Get returns the row, revoked or expired included.
func (p *Postgres) Get(ctx context.Context, id string) (*Session, error) {
	rows, err := p.pool.Query(ctx, sqlGet, id)
	if err != nil {
		return nil, pgErr("get", err)
	}
	s, err := pgx.CollectExactlyOneRow(rows, scanSession)
	if err != nil {
		return nil, pgErr("get", err)
	}
	return s, nil
}

const sqlGetMany = `SELECT ` + sessionCols + ` FROM sessions WHERE id = ANY($1::text[])`

// GetMany returns the rows among ids.
func (p *Postgres) GetMany(ctx context.Context, ids []string) ([]*Session, error) {
	if len(ids) == 0 {
		return []*Session{}, nil
	}
	return p.collect(ctx, "get many", sqlGetMany, ids)
}

// sqlSync writes behind a batch in one statement. GREATEST keeps a late,
// older batch from moving a session's expiry backwards, and revoked rows are
// left as they were revoked.
const sqlSync = `
UPDATE sessions AS s
SET last_seen_at = GREATEST(s.last_seen_at, v.last_seen_at),
    expires_at   = LEAST(GREATEST(s.expires_at, v.expires_at), s.absolute_expires_at)
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS v(id, last_seen_at, expires_at)
WHERE s.id = v.id AND s.revoked_at IS NULL`

// Sync writes the sliding fields of a batch in one UPDATE. A session
// present twice keeps its latest touch (UPDATE … FROM would pick one
// arbitrarily).
func (p *Postgres) Sync(ctx context.Context, touches []Touch) error {
	if len(touches) == 0 {
		return nil
	}
	latest := make(map[string]Touch, len(touches))
	for _, t := range touches {
		if cur, ok := latest[t.ID]; !ok || t.LastSeenAt.After(cur.LastSeenAt) {
			latest[t.ID] = t
		}
	}
	ids := make([]string, 0, len(latest))
	seen := make([]time.Time, 0, len(latest))
	exp := make([]time.Time, 0, len(latest))
	for id, t := range latest {
		ids, seen, exp = append(ids, id), append(seen, t.LastSeenAt), append(exp, t.ExpiresAt)
	}
	_, err := p.pool.Exec(ctx, sqlSync, ids, seen, exp)
	return pgErr("sync", err)
}

const sqlRevoke = `
UPDATE sessions SET revoked_at = $2, revoke_reason = $3
WHERE id = $1 AND revoked_at IS NULL
RETURNING ` + sessionCols

// Revoke marks one unrevoked session revoked and returns it.
func (p *Postgres) Revoke(ctx context.Context, id string, reason Reason, at time.Time) (*Session, error) {
	rows, err := p.pool.Query(ctx, sqlRevoke, id, at, string(reason))
	if err != nil {
		return nil, pgErr("revoke", err)
	}
	s, err := pgx.CollectExactlyOneRow(rows, scanSession)
	if err != nil {
		return nil, pgErr("revoke", err)
	}
	return s, nil
}

// sqlRevokeMany's values are named r* so that RETURNING's unqualified
// column names stay the table's.
const sqlRevokeMany = `
UPDATE sessions SET revoked_at = v.rat, revoke_reason = v.rreason
FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS v(rid, rat, rreason)
WHERE id = v.rid AND revoked_at IS NULL
RETURNING ` + sessionCols

// RevokeMany marks those of items still unrevoked revoked in one statement
// (one commit) and returns them. Ids are sent sorted, so that two nodes
// revoking overlapping sets lock rows in the same order; a deadlock that
// happens anyway is retried once.
func (p *Postgres) RevokeMany(ctx context.Context, items []RevokeItem) ([]*Session, error) {
	if len(items) == 0 {
		return []*Session{}, nil
	}
	sorted := slices.SortedFunc(slices.Values(items), func(a, b RevokeItem) int { return strings.Compare(a.ID, b.ID) })
	ids := make([]string, len(sorted))
	ats := make([]time.Time, len(sorted))
	reasons := make([]string, len(sorted))
	for i, it := range sorted {
		ids[i], ats[i], reasons[i] = it.ID, it.At, string(it.Reason)
	}
	out, err := p.collect(ctx, "revoke many", sqlRevokeMany, ids, ats, reasons)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "40P01" {
		out, err = p.collect(ctx, "revoke many", sqlRevokeMany, ids, ats, reasons)
	}
	return out, err
}

const sqlRevokeUser = `
UPDATE sessions SET revoked_at = $2, revoke_reason = $3
WHERE user_id = $1::uuid AND revoked_at IS NULL AND id <> $4
RETURNING id`

// RevokeUser marks every unrevoked session of userID but except revoked.
// Expired rows are marked too: the write-behind expiry may lag, so a row
// that looks expired here can still be alive in the hot backend.
func (p *Postgres) RevokeUser(ctx context.Context, userID string, reason Reason, at time.Time, except string) ([]string, error) {
	rows, err := p.pool.Query(ctx, sqlRevokeUser, userID, at, string(reason), except)
	if err != nil {
		return nil, pgErr("revoke user", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, pgErr("revoke user", err)
	}
	return ids, nil
}

// sqlDueForExpiry walks the partial index sessions_live_expires.
const sqlDueForExpiry = `SELECT ` + sessionCols + ` FROM sessions
WHERE revoked_at IS NULL AND expires_at < $1 ORDER BY expires_at LIMIT $2`

// DueForExpiry returns unrevoked sessions whose expiry is before before.
func (p *Postgres) DueForExpiry(ctx context.Context, before time.Time, limit int) ([]*Session, error) {
	return p.collect(ctx, "due for expiry", sqlDueForExpiry, before, limit)
}

const sqlMarkExpired = `
UPDATE sessions SET revoked_at = LEAST(expires_at, absolute_expires_at), revoke_reason = 'expired'
WHERE id = ANY($1::text[]) AND revoked_at IS NULL
RETURNING ` + sessionCols

// MarkExpired records the expiry of those of ids still unrevoked.
func (p *Postgres) MarkExpired(ctx context.Context, ids []string) ([]*Session, error) {
	return p.collect(ctx, "mark expired", sqlMarkExpired, ids)
}

const sqlListLive = `SELECT ` + sessionCols + ` FROM sessions
WHERE user_id = $1::uuid AND revoked_at IS NULL AND expires_at > $2 AND absolute_expires_at > $2
ORDER BY created_at, id`

// ListLive returns userID's unrevoked, unexpired rows, oldest first.
func (p *Postgres) ListLive(ctx context.Context, userID string, now time.Time) ([]*Session, error) {
	return p.collect(ctx, "list", sqlListLive, userID, now)
}

// Ping reports whether Postgres answers.
func (p *Postgres) Ping(ctx context.Context) error {
	return pgErr("ping", p.pool.Ping(ctx))
}

func (p *Postgres) collect(ctx context.Context, op, sql string, args ...any) ([]*Session, error) {
	rows, err := p.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, pgErr(op, err)
	}
	out, err := pgx.CollectRows(rows, scanSession)
	if err != nil {
		return nil, pgErr(op, err)
	}
	return out, nil
}

func scanSession(row pgx.CollectableRow) (*Session, error) {
	var (
		s       Session
		kind    string
		reason  string
		revoked *time.Time
	)
	err := row.Scan(&s.ID, &s.UserID, &kind, &s.SecretHash, &s.CSRFToken, &s.Scopes,
		&s.Device, &s.IP, &s.UserAgent, &s.CreatedAt, &s.LastSeenAt, &s.ExpiresAt,
		&s.AbsoluteExpiresAt, &revoked, &reason)
	if err != nil {
		return nil, err
	}
	s.Kind, s.RevokeReason = Kind(kind), Reason(reason)
	if revoked != nil {
		s.RevokedAt = revoked.UTC()
	}
	for _, t := range []*time.Time{&s.CreatedAt, &s.LastSeenAt, &s.ExpiresAt, &s.AbsoluteExpiresAt} {
		*t = t.UTC()
	}
	if s.Scopes == nil {
		s.Scopes = []string{}
	}
	// The row received LastSeenAt at its last sync, so that is when it was
	// synced: a restored session does not write again before SyncInterval.
	s.SyncedAt = s.LastSeenAt
	return &s, nil
}

// pgErr maps no rows to ErrNotFound and an unreachable or timed-out
// database to ErrUnavailable, keeping the cause; other errors (constraint
// violations, bad input) are wrapped as they are.
func pgErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return ErrNotFound
	case unreachable(err):
		return fmt.Errorf("sessions: postgres %s: %w: %w", op, ErrUnavailable, err)
	default:
		return fmt.Errorf("sessions: postgres %s: %w", op, err)
	}
}

// unreachable reports whether err means "this database cannot serve now"
// rather than "this statement is wrong".
func unreachable(err error) bool {
	var (
		connErr *pgconn.ConnectError
		netErr  net.Error
		pgErr   *pgconn.PgError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err),
		errors.As(err, &connErr), errors.As(err, &netErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		pgconn.SafeToRetry(err):
		return true
	case errors.As(err, &pgErr):
		switch pgErr.Code {
		case "53300", "53100", "57P01", "57P02", "57P03":
			// Too many connections, disk full, shutting down, starting up.
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") // connection exception

	}
	// pgxpool reports a closed pool with a plain error.
	return strings.Contains(err.Error(), "closed pool")
}
