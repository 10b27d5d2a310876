package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/internal/testenv"
	"github.com/sessionhub/sessionhub/sessions"
)

type postgresRefreshBackend struct {
	*refreshBackend
	pool *pgxpool.Pool
}

// newPostgresRefreshBackend is the Postgres store on a fresh migrated
// schema. Sessions are plain rows (refresh_tokens references sessions).
func newPostgresRefreshBackend(t *testing.T) *postgresRefreshBackend {
	t.Helper()
	pool := testenv.Postgres(t)
	return &postgresRefreshBackend{
		pool: pool,
		refreshBackend: &refreshBackend{
			store: NewRefreshPostgres(pool),
			newSession: func(t *testing.T, createdAt time.Time) string {
				t.Helper()
				return insertRefreshSession(t, pool, createdAt)
			},
			familySize: func(t *testing.T, sessionID string) int {
				t.Helper()
				var n int
				require.NoError(t, pool.QueryRow(context.Background(),
					`SELECT count(*) FROM refresh_tokens WHERE session_id = $1`, sessionID).Scan(&n))
				return n
			},
		},
	}
}

func randomUUID(t testing.TB) string {
	var b [16]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// insertRefreshSession writes a user and a refresh-kind session row.
func insertRefreshSession(t *testing.T, pool *pgxpool.Pool, createdAt time.Time) string {
	t.Helper()
	ctx := context.Background()
	userID := randomUUID(t)
	_, err := pool.Exec(ctx, `INSERT INTO users (id, email) VALUES ($1, $2)`, userID, userID+"@example.test")
	require.NoError(t, err)
	tok := sessions.NewToken()
	_, err = pool.Exec(ctx, `INSERT INTO sessions (id, user_id, kind, secret_hash, csrf_token, device,
		created_at, last_seen_at, expires_at, absolute_expires_at)
		VALUES ($1, $2, 'refresh', $3, $4, 'Pixel 8', $5, $5, $6, $7)`,
		tok.ID, userID, tok.Hash(), sessions.RandomString(32), createdAt,
		createdAt.Add(12*time.Hour), createdAt.Add(168*time.Hour))
	require.NoError(t, err)
	return tok.ID
}

func TestRefreshPostgresUnknownSession(t *testing.T) {
	t.Parallel()
	b := newPostgresRefreshBackend(t)
	f := b.fixture(t, RefreshConfig{})
	_, err := f.r.Issue(context.Background(), sessions.RandomString(16))
	require.ErrorIs(t, err, sessions.ErrNotFound)
}

func TestRefreshPostgresUnavailable(t *testing.T) {
	t.Parallel()
	b := newPostgresRefreshBackend(t)
	f := b.fixture(t, RefreshConfig{})
	_, t0 := f.issue(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := f.r.Rotate(ctx, t0)
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrRefreshInvalid, "a dead database is not a bad token")
	require.NotErrorIs(t, err, ErrRefreshReuse)
	require.ErrorIs(t, err, sessions.ErrUnavailable)
}

// TestRefreshPostgresHung: a Postgres that accepts and never answers is
// 503 within API.md's 5 s for a refresh (and a mobile login's issue), not
// a request held as long as the client waits.
func TestRefreshPostgresHung(t *testing.T) {
	t.Parallel()
	// The 5 s is the store timeout's; the watchdog below only tells an
	// answer from a hang, with room for a loaded CI machine.
	require.Less(t, pgTimeout, 5*time.Second)
	r, err := NewRefresher(RefreshConfig{}, NewRefreshPostgres(hungPool(t)))
	require.NoError(t, err)
	for name, op := range map[string]func() error{
		"rotate": func() error { _, _, err := r.Rotate(context.Background(), newRefreshToken().String()); return err },
		"issue":  func() error { _, err := r.Issue(context.Background(), sessions.RandomString(16)); return err },
	} {
		done := make(chan error, 1)
		go func() { done <- op() }()
		select {
		case err := <-done:
			require.ErrorIs(t, err, sessions.ErrUnavailable, name)
		case <-time.After(30 * time.Second):
			t.Fatalf("%s on a hung Postgres never answered", name)
		}
	}
}

// TestRefreshSecretsNeverStored is SECURITY.md items 1–2 for refresh
// tokens: after issue, rotations and a grace retry, no text, bytea or
// jsonb column of any table holds a raw secret (nor its base64 body);
// token_hash is SHA-256 of the secret; the sealed successor does not
// contain the successor in the clear.
func TestRefreshSecretsNeverStored(t *testing.T) {
	t.Parallel()
	b := newPostgresRefreshBackend(t)
	f := b.fixture(t, RefreshConfig{})
	ctx := context.Background()
	sid, t0 := f.issue(t)
	t1 := f.rotate(t, sid, t0)
	require.Equal(t, t1, f.rotate(t, sid, t0)) // grace retry
	t2 := f.rotate(t, sid, t1)

	var secrets []string
	for _, tk := range []string{t0, t1, t2} {
		p, ok := parseRefreshToken(tk)
		require.True(t, ok)
		secrets = append(secrets, p.secret, p.secret[len(RefreshPrefix):])

		var hash []byte
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT token_hash FROM refresh_tokens WHERE id = $1`, p.id).Scan(&hash))
		require.Equal(t, sessions.HashSecret(p.secret), hash, "only SHA-256 of the secret is stored")
	}

	cols, err := b.pool.Query(ctx, `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND data_type IN ('text', 'bytea', 'jsonb', 'character varying', 'ARRAY')`)
	require.NoError(t, err)
	type col struct{ table, name string }
	var all []col
	for cols.Next() {
		var c col
		require.NoError(t, cols.Scan(&c.table, &c.name))
		all = append(all, c)
	}
	require.NoError(t, cols.Err())
	require.NotEmpty(t, all)

	scanned := 0
	for _, c := range all {
		rows, err := b.pool.Query(ctx, fmt.Sprintf(`SELECT %q::text, %q FROM %q`, c.name, c.name, c.table))
		require.NoError(t, err)
		for rows.Next() {
			var asText *string
			var raw any
			require.NoError(t, rows.Scan(&asText, &raw))
			for _, s := range secrets {
				if asText != nil {
					require.NotContains(t, *asText, s, "%s.%s holds a raw secret", c.table, c.name)
				}
				if bs, ok := raw.([]byte); ok {
					require.False(t, bytes.Contains(bs, []byte(s)), "%s.%s holds a raw secret", c.table, c.name)
				}
			}
			scanned++
		}
		require.NoError(t, rows.Err())
	}
	require.Positive(t, scanned)
}

// TestRefreshKeepsAuthTime is SECURITY.md item 29: rotations keep the
// device's session — the same session id every time, its row untouched —
// so a JWT minted after any refresh carries auth_time = the session's
// CreatedAt, the original login.
func TestRefreshKeepsAuthTime(t *testing.T) {
	t.Parallel()
	b := newPostgresRefreshBackend(t)
	f := b.fixture(t, RefreshConfig{})
	ctx := context.Background()
	loginAt := f.clock.Now()
	sid, tok := f.issue(t)
	durable := sessions.NewPostgres(b.pool)
	keys, err := EphemeralKeySet()
	require.NoError(t, err)
	tokens, err := NewTokens(TokenConfig{Issuer: testIssuer, Now: f.clock.Now}, keys)
	require.NoError(t, err)

	for range 3 {
		f.clock.Advance(2 * time.Hour)
		tok = f.rotate(t, sid, tok)
		sess, err := durable.Get(ctx, sid)
		require.NoError(t, err)
		require.True(t, sess.CreatedAt.Equal(loginAt), "a refresh never re-authenticates")
		jwtRaw, _, err := tokens.Mint(sess)
		require.NoError(t, err)
		c, err := tokens.Verify(jwtRaw)
		require.NoError(t, err)
		require.Equal(t, loginAt.Unix(), c.AuthTime.Unix())
		require.Equal(t, f.clock.Now().Unix(), c.IssuedAt.Unix())
	}
	var n int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM sessions`).Scan(&n))
	require.Equal(t, 1, n, "no session is created by refreshing")
}
