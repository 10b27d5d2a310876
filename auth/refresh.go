package auth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sessionhub/sessionhub/sessions"
)

var (
	// ErrRefreshInvalid means the refresh token is malformed, unknown, or
	// its secret does not match. Callers answer 401 invalid_token.
	ErrRefreshInvalid = errors.New("auth: invalid refresh token")
	// ErrRefreshReuse means a genuine but already rotated refresh token was
	// presented outside the grace window, or an older ancestor was. It
	// comes with the session id: the caller revokes that session (reason
	// refresh_reuse), which ends the whole family, writes the refresh_reuse
	// audit event and answers 401 invalid_token.
	ErrRefreshReuse = errors.New("auth: refresh token reused")
	// ErrRefreshFamilyExists means Issue was called for a session that
	// already has refresh tokens: one family per device session, so a
	// second Issue would fork it.
	ErrRefreshFamilyExists = errors.New("auth: refresh family already issued")
)

// RefreshPrefix starts every refresh secret so that secret scanners
// recognise a leaked refresh token (SECURITY.md 1).
const RefreshPrefix = "shr_"

const (
	// DefaultRefreshGrace is how long re-presenting the just-rotated token
	// counts as a retry (a lost response, two tabs of one app) and not as
	// theft: long enough for a mobile retry, short enough to be no window
	// for an attacker who has to race the legitimate client.
	DefaultRefreshGrace = 30 * time.Second
	refreshIDBytes      = 16 // 128-bit public id, the row key
	refreshSecretBytes  = 32 // 256-bit secret (SECURITY.md 1)
	// sealInfo labels the HKDF output: a key for sealing the successor and
	// nothing else.
	sealInfo = "sessionhub refresh successor v1 "
)

// refreshSecretLen is the length of "shr_" + base64url(32 bytes).
const refreshSecretLen = len(RefreshPrefix) + (refreshSecretBytes*8+5)/6

// refreshToken is a parsed "<id>.shr_<secret>".
type refreshToken struct {
	id, secret string
}

func (t refreshToken) String() string { return t.id + "." + t.secret }

func newRefreshToken() refreshToken {
	return refreshToken{
		id:     sessions.RandomString(refreshIDBytes),
		secret: RefreshPrefix + sessions.RandomString(refreshSecretBytes),
	}
}

// parseRefreshToken checks the shape of s without touching a store.
func parseRefreshToken(s string) (refreshToken, bool) {
	id, secret, ok := strings.Cut(s, ".")
	if !ok || !sessions.ValidID(id) || len(secret) != refreshSecretLen ||
		!strings.HasPrefix(secret, RefreshPrefix) || !sessions.IsBase64URL(secret[len(RefreshPrefix):]) {
		return refreshToken{}, false
	}
	return refreshToken{id: id, secret: secret}, true
}

// refreshRecord is one stored refresh token. It never holds a secret:
// hash is SHA-256 of it, successorSealed is the successor token encrypted
// under a key only the holder of this token's secret can derive.
type refreshRecord struct {
	id, sessionID, parentID string
	hash                    []byte
	createdAt, rotatedAt    time.Time // rotatedAt zero: the current token
	successorID             string
	successorSealed         []byte
}

// rotation is what a rotate decision writes: the successor record (its
// createdAt is also the parent's rotatedAt) and the sealed successor.
type rotation struct {
	next   refreshRecord
	sealed []byte
}

// RefreshStore keeps refresh-token records: NewRefreshPostgres in
// production, NewRefreshMemory in the embedded default. Its methods are
// unexported so that nothing outside this file's protocol writes it.
type RefreshStore interface {
	// issue stores the first record of a session's family, or returns
	// ErrRefreshFamilyExists (sessions.ErrNotFound: no such session).
	issue(ctx context.Context, r refreshRecord) error
	// rotate locks record id for the length of decide, which sees it and
	// its successor (nil when none). When decide returns a rotation, the
	// store inserts its record and marks id rotated, atomically. Unknown
	// id: ErrRefreshInvalid. decide's error is returned as is.
	rotate(ctx context.Context, id string, decide func(cur, succ *refreshRecord) (*rotation, error)) error
}

// RefreshConfig configures a Refresher. Zero values take the defaults.
type RefreshConfig struct {
	// Grace is the retry window (SESSIONHUB_REFRESH_GRACE); 0 → 30 s;
	// negative: no retries, every re-presentation is reuse.
	Grace time.Duration
	Now   func() time.Time // nil → time.Now
}

// Refresher issues and rotates the refresh tokens of mobile devices: one
// family per device session; every use rotates; a retry of the
// just-rotated token within Grace gets the same successor; any other reuse
// is reported with the session id. It does not check that the session is
// live: the caller does, after Rotate, and a revoked session ends the
// family. Safe for concurrent use.
type Refresher struct {
	cfg   RefreshConfig
	store RefreshStore
}

// NewRefresher returns a Refresher over store.
func NewRefresher(cfg RefreshConfig, store RefreshStore) (*Refresher, error) {
	if store == nil {
		return nil, errors.New("auth: NewRefresher: nil store")
	}
	if cfg.Grace == 0 {
		cfg.Grace = DefaultRefreshGrace
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Refresher{cfg: cfg, store: store}, nil
}

// now is the clock at the precision Postgres keeps (µs), so that both
// stores judge the grace window alike.
func (r *Refresher) now() time.Time { return r.cfg.Now().Truncate(time.Microsecond) }

// Issue returns the first refresh token of sessionID's family. Only its
// SHA-256 is stored.
func (r *Refresher) Issue(ctx context.Context, sessionID string) (token string, err error) {
	if !sessions.ValidID(sessionID) {
		return "", fmt.Errorf("auth: issue refresh token: %w", sessions.ErrNotFound)
	}
	t := newRefreshToken()
	rec := refreshRecord{
		id:        t.id,
		sessionID: sessionID,
		hash:      sessions.HashSecret(t.secret),
		createdAt: r.now(),
	}
	if err := r.store.issue(ctx, rec); err != nil {
		return "", err
	}
	return t.String(), nil
}

// Rotate exchanges token for its successor and returns the session it
// belongs to. A current token gets a new successor; the token rotated
// last, re-presented within Grace while its successor is still current,
// gets that same successor again; concurrent calls with one token agree on
// one successor. Any other rotated token returns the session id with
// ErrRefreshReuse. Malformed, unknown or wrong-secret tokens return
// ErrRefreshInvalid and no session id.
func (r *Refresher) Rotate(ctx context.Context, token string) (sessionID, next string, err error) {
	t, ok := parseRefreshToken(token)
	if !ok {
		return "", "", ErrRefreshInvalid
	}
	hash := sessions.HashSecret(t.secret)
	now := r.now()
	err = r.store.rotate(ctx, t.id, func(cur, succ *refreshRecord) (*rotation, error) {
		sessionID, next = "", ""
		if subtle.ConstantTimeCompare(cur.hash, hash) != 1 {
			return nil, ErrRefreshInvalid
		}
		sessionID = cur.sessionID
		if cur.rotatedAt.IsZero() {
			n := newRefreshToken()
			sealed, err := sealSuccessor(t, n)
			if err != nil {
				return nil, err
			}
			next = n.String()
			return &rotation{
				next: refreshRecord{
					id:        n.id,
					sessionID: cur.sessionID,
					parentID:  cur.id,
					hash:      sessions.HashSecret(n.secret),
					createdAt: now,
				},
				sealed: sealed,
			}, nil
		}
		if r.cfg.Grace < 0 || now.Sub(cur.rotatedAt) > r.cfg.Grace ||
			succ == nil || !succ.rotatedAt.IsZero() {
			return nil, ErrRefreshReuse
		}
		n, err := openSuccessor(t, cur, succ)
		if err != nil {
			return nil, err
		}
		next = n.String()
		return nil, nil
	})
	switch {
	case errors.Is(err, ErrRefreshReuse):
		return sessionID, "", err
	case err != nil:
		return "", "", err
	}
	return sessionID, next, nil
}

// successorAEAD derives the AEAD that seals t's successor: AES-256-GCM
// under HKDF-SHA256 of t's secret. The server stores only SHA-256 of the
// secret, which yields nothing about this key, so a database dump does
// not reveal successors.
func successorAEAD(t refreshToken) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, []byte(t.secret), nil, sealInfo+t.id, 32)
	if err != nil {
		return nil, fmt.Errorf("auth: derive seal key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("auth: seal cipher: %w", err)
	}
	// A random nonce per seal; each key seals exactly one successor anyway.
	return cipher.NewGCMWithRandomNonce(block)
}

// sealAD binds a sealed successor to its parent and its own id.
func sealAD(parentID, successorID string) []byte {
	return []byte(parentID + "." + successorID)
}

func sealSuccessor(t, next refreshToken) ([]byte, error) {
	aead, err := successorAEAD(t)
	if err != nil {
		return nil, err
	}
	return aead.Seal(nil, nil, []byte(next.String()), sealAD(t.id, next.id)), nil
}

// openSuccessor unseals cur's successor and checks it is succ.
func openSuccessor(t refreshToken, cur, succ *refreshRecord) (refreshToken, error) {
	aead, err := successorAEAD(t)
	if err != nil {
		return refreshToken{}, err
	}
	plain, err := aead.Open(nil, nil, cur.successorSealed, sealAD(cur.id, cur.successorID))
	if err != nil {
		return refreshToken{}, fmt.Errorf("auth: open sealed successor of %s: %w", cur.id, err)
	}
	n, ok := parseRefreshToken(string(plain))
	if !ok || n.id != succ.id ||
		subtle.ConstantTimeCompare(succ.hash, sessions.HashSecret(n.secret)) != 1 {
		return refreshToken{}, fmt.Errorf("auth: sealed successor of %s does not match its record", cur.id)
	}
	return n, nil
}
