package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgTimeout bounds one user-store call, so a dead Postgres answers 503
// within API.md's 5 s instead of hanging a request.
const pgTimeout = 3 * time.Second

// pgUsers is the Postgres UserStore.
type pgUsers struct{ pool *pgxpool.Pool }

// NewPostgresUsers returns the Postgres UserStore on the migrated schema.
func NewPostgresUsers(pool *pgxpool.Pool) UserStore { return &pgUsers{pool: pool} }

const userColumns = `id::text, email, email_verified, name, coalesce(password_hash, ''), scopes, created_at, updated_at`

const sqlInsertUser = `
INSERT INTO users (id, email, email_verified, name, password_hash, scopes, created_at, updated_at)
VALUES ($1, $2, $3, $4, nullif($5, ''), $6, $7, $7)`

const sqlUserByEmail = `SELECT ` + userColumns + ` FROM users WHERE lower(email) = lower($1)`

const sqlUserByID = `SELECT ` + userColumns + ` FROM users WHERE id = $1`

const sqlSetPassword = `UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1`

// sqlAddScopes merges and sorts in SQL so concurrent grants never lose one.
const sqlAddScopes = `
UPDATE users SET scopes = (SELECT coalesce(array_agg(DISTINCT s ORDER BY s), '{}')
                             FROM unnest(scopes || $2::text[]) AS s),
                 updated_at = now()
WHERE id = $1
RETURNING ` + userColumns

// sqlSearchUsers matches q literally with strpos, so % and _ in q are plain
// characters (no LIKE pattern is ever built from input). Keyset pagination
// on lower(email) uses users_email_lower_key.
const sqlSearchUsers = `
SELECT ` + userColumns + ` FROM users
WHERE ($1 = '' OR strpos(lower(email), lower($1)) > 0 OR strpos(lower(name), lower($1)) > 0)
  AND lower(email) > lower($2)
ORDER BY lower(email)
LIMIT $3`

const sqlIdentity = `
SELECT provider, subject, user_id::text, email, email_verified, created_at
FROM user_identities WHERE provider = $1 AND subject = $2`

// sqlLinkIdentity inserts or, for the same user, refreshes the identity;
// a row owned by another user is left alone and reported as taken.
const sqlLinkIdentity = `
INSERT INTO user_identities (provider, subject, user_id, email, email_verified, created_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (provider, subject) DO UPDATE
   SET email = excluded.email, email_verified = excluded.email_verified
   WHERE user_identities.user_id = excluded.user_id
RETURNING user_id::text`

func pgWrap(op string, err error) error {
	if unavailable(err) {
		return fmt.Errorf("auth: %s: %w: %v", op, ErrUnavailable, err)
	}
	return fmt.Errorf("auth: %s: %w", op, err)
}

func scanUser(row pgx.Row) (*User, error) {
	u := &User{}
	err := row.Scan(&u.ID, &u.Email, &u.EmailVerified, &u.Name, &u.PasswordHash, &u.Scopes, &u.CreatedAt, &u.UpdatedAt)
	if err != nil {
		return nil, err
	}
	if u.Scopes == nil {
		u.Scopes = []string{}
	}
	return u, nil
}

func (p *pgUsers) CreateUser(ctx context.Context, u *User) error {
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	_, err := p.pool.Exec(ctx, sqlInsertUser, u.ID, u.Email, u.EmailVerified, u.Name, u.PasswordHash, u.Scopes, u.CreatedAt)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		return ErrEmailTaken
	}
	if err != nil {
		return pgWrap("create user", err)
	}
	return nil
}

func (p *pgUsers) one(ctx context.Context, op, sql string, args ...any) (*User, error) {
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	u, err := scanUser(p.pool.QueryRow(ctx, sql, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrUserNotFound
	}
	if err != nil {
		return nil, pgWrap(op, err)
	}
	return u, nil
}

func (p *pgUsers) UserByEmail(ctx context.Context, email string) (*User, error) {
	return p.one(ctx, "user by email", sqlUserByEmail, email)
}

func (p *pgUsers) UserByID(ctx context.Context, id string) (*User, error) {
	if !uuidShape(id) {
		return nil, ErrUserNotFound
	}
	return p.one(ctx, "user by id", sqlUserByID, id)
}

func (p *pgUsers) SetPasswordHash(ctx context.Context, id, hash string) error {
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	tag, err := p.pool.Exec(ctx, sqlSetPassword, id, hash)
	if err != nil {
		return pgWrap("set password", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrUserNotFound
	}
	return nil
}

func (p *pgUsers) AddScopes(ctx context.Context, id string, scopes []string) (*User, error) {
	if !uuidShape(id) {
		return nil, ErrUserNotFound
	}
	return p.one(ctx, "add scopes", sqlAddScopes, id, scopes)
}

func (p *pgUsers) SearchUsers(ctx context.Context, q, after string, limit int) ([]*User, error) {
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	rows, err := p.pool.Query(ctx, sqlSearchUsers, q, after, limit)
	if err != nil {
		return nil, pgWrap("search users", err)
	}
	defer rows.Close()
	out := []*User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, pgWrap("search users", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, pgWrap("search users", err)
	}
	return out, nil
}

func (p *pgUsers) IdentityBySubject(ctx context.Context, provider, subject string) (*Identity, error) {
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	id := &Identity{}
	err := p.pool.QueryRow(ctx, sqlIdentity, provider, subject).
		Scan(&id.Provider, &id.Subject, &id.UserID, &id.Email, &id.EmailVerified, &id.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrIdentityNotFound
	}
	if err != nil {
		return nil, pgWrap("identity", err)
	}
	return id, nil
}

func (p *pgUsers) LinkIdentity(ctx context.Context, id *Identity) error {
	if !uuidShape(id.UserID) {
		return ErrUserNotFound
	}
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	var owner string
	err := p.pool.QueryRow(ctx, sqlLinkIdentity, id.Provider, id.Subject, id.UserID, id.Email, id.EmailVerified, id.CreatedAt).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrIdentityTaken // the conflict's WHERE refused: another user owns it
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23503" { // foreign_key_violation
		return ErrUserNotFound
	}
	if err != nil {
		return pgWrap("link identity", err)
	}
	return nil
}

// sqlInsertIdentity inserts a brand-new identity; a taken (provider,
// subject) inserts nothing and returns no row.
const sqlInsertIdentity = `
INSERT INTO user_identities (provider, subject, user_id, email, email_verified, created_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (provider, subject) DO NOTHING
RETURNING user_id::text`

func (p *pgUsers) CreateUserWithIdentity(ctx context.Context, u *User, id *Identity) error {
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, sqlInsertUser, u.ID, u.Email, u.EmailVerified, u.Name, u.PasswordHash, u.Scopes, u.CreatedAt)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
			return ErrEmailTaken
		}
		if err != nil {
			return pgWrap("create user", err)
		}
		var owner string
		err = tx.QueryRow(ctx, sqlInsertIdentity, id.Provider, id.Subject, id.UserID, id.Email, id.EmailVerified, id.CreatedAt).Scan(&owner)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrIdentityTaken
		}
		if err != nil {
			return pgWrap("create identity", err)
		}
		return nil
	})
}
