package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionhub/sessionhub/sessions"
)

// refreshPostgres keeps refresh tokens in the refresh_tokens table. Rows
// go when their session row goes (ON DELETE CASCADE); a revoked session
// ends its family because Rotate's caller checks the session.
type refreshPostgres struct {
	pool *pgxpool.Pool
}

// NewRefreshPostgres returns the Postgres RefreshStore.
func NewRefreshPostgres(pool *pgxpool.Pool) RefreshStore {
	return &refreshPostgres{pool: pool}
}

const (
	// sqlRefreshLockSession serialises Issue per session, so two concurrent
	// Issues cannot both see an empty family. NO KEY UPDATE does not block
	// rows that merely reference the session.
	sqlRefreshLockSession  = `SELECT 1 FROM sessions WHERE id = $1 FOR NO KEY UPDATE`
	sqlRefreshFamilyExists = `SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE session_id = $1)`
	sqlRefreshInsert       = `INSERT INTO refresh_tokens (id, session_id, token_hash, parent_id, created_at)
VALUES ($1, $2, $3, NULLIF($4, ''), $5)`
	// sqlRefreshLock holds the row for the rest of the transaction: a
	// concurrent Rotate of the same token waits here and then sees the
	// committed successor (READ COMMITTED re-reads the locked row).
	sqlRefreshLock = `SELECT id, session_id, token_hash, COALESCE(parent_id, ''), created_at,
       rotated_at, COALESCE(successor_id, ''), successor_sealed
FROM refresh_tokens WHERE id = $1 FOR UPDATE`
	sqlRefreshGet = `SELECT id, session_id, token_hash, COALESCE(parent_id, ''), created_at,
       rotated_at, COALESCE(successor_id, ''), successor_sealed
FROM refresh_tokens WHERE id = $1`
	sqlRefreshMarkRotated = `UPDATE refresh_tokens
SET rotated_at = $2, successor_id = $3, successor_sealed = $4
WHERE id = $1 AND rotated_at IS NULL`
)

// refreshDBError wraps a database failure so that callers answer 503.
func refreshDBError(op string, err error) error {
	return fmt.Errorf("auth: refresh store: %s: %w: %w", op, sessions.ErrUnavailable, err)
}

// inTx runs fn in one transaction. fn's own error comes back as is; a
// failure to begin or commit is the database's. Its callers bound it by
// pgTimeout, so that a hung Postgres answers 503 within API.md's 5 s; a
// commit cut by the deadline may still have landed, which the grace window
// absorbs (the client's retry of the same token gets the same successor).
func (p *refreshPostgres) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	var fnErr error
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		fnErr = fn(tx)
		return fnErr
	})
	if err != nil && fnErr == nil {
		return refreshDBError("transaction", err)
	}
	return err
}

func (p *refreshPostgres) issue(ctx context.Context, r refreshRecord) error {
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	return p.inTx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, sqlRefreshLockSession, r.sessionID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("auth: issue refresh token: %w", sessions.ErrNotFound)
		}
		if err != nil {
			return refreshDBError("lock session", err)
		}
		var exists bool
		if err := tx.QueryRow(ctx, sqlRefreshFamilyExists, r.sessionID).Scan(&exists); err != nil {
			return refreshDBError("check family", err)
		}
		if exists {
			return ErrRefreshFamilyExists
		}
		if _, err := tx.Exec(ctx, sqlRefreshInsert, r.id, r.sessionID, r.hash, r.parentID, r.createdAt); err != nil {
			return refreshDBError("insert", err)
		}
		return nil
	})
}

func (p *refreshPostgres) rotate(ctx context.Context, id string, decide func(cur, succ *refreshRecord) (*rotation, error)) error {
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	return p.inTx(ctx, func(tx pgx.Tx) error {
		cur, err := scanRefresh(tx.QueryRow(ctx, sqlRefreshLock, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrRefreshInvalid
		}
		if err != nil {
			return refreshDBError("lock token", err)
		}
		var succ *refreshRecord
		if cur.successorID != "" {
			succ, err = scanRefresh(tx.QueryRow(ctx, sqlRefreshGet, cur.successorID))
			if err != nil {
				return refreshDBError("read successor", err)
			}
		}
		rot, err := decide(cur, succ)
		if err != nil || rot == nil {
			return err
		}
		n := rot.next
		if _, err := tx.Exec(ctx, sqlRefreshInsert, n.id, n.sessionID, n.hash, n.parentID, n.createdAt); err != nil {
			return refreshDBError("insert successor", err)
		}
		tag, err := tx.Exec(ctx, sqlRefreshMarkRotated, cur.id, n.createdAt, n.id, rot.sealed)
		if err != nil {
			return refreshDBError("mark rotated", err)
		}
		if tag.RowsAffected() != 1 {
			// Unreachable while the row is locked; refuse rather than fork.
			return fmt.Errorf("auth: refresh token %s rotated under its lock", cur.id)
		}
		return nil
	})
}

func scanRefresh(row pgx.Row) (*refreshRecord, error) {
	var (
		r         refreshRecord
		rotatedAt *time.Time
	)
	err := row.Scan(&r.id, &r.sessionID, &r.hash, &r.parentID, &r.createdAt,
		&rotatedAt, &r.successorID, &r.successorSealed)
	if err != nil {
		return nil, err
	}
	if rotatedAt != nil {
		r.rotatedAt = *rotatedAt
	}
	return &r, nil
}
