package auth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// oidcStateCookie carries the state, nonce and PKCE verifier of one Google
// login between the redirect to the provider and the callback. __Host-
// pins it to this origin (Secure, Path=/, no Domain).
const oidcStateCookie = "__Host-sessionhub-oidc"

// oidcStateTTL bounds how long a person may take at the provider's consent
// screen; past it the callback is refused and they start again.
const oidcStateTTL = 10 * time.Minute

// oidcRandomBytes is the entropy of state, nonce and verifier: 256 bits,
// twice the 128-bit floor of SECURITY.md item 34.
const oidcRandomBytes = 32

// oidcMaxCookie refuses absurd cookie values before any decoding work; a
// sealed flow is a few hundred bytes.
const oidcMaxCookie = 2048

// Flow modes: a plain login, or linking Google to the logged-in user.
const (
	oidcModeLogin = "login"
	oidcModeLink  = "link"
)

// Errors of the OIDC state handling; each becomes a 400 at the callback.
var (
	ErrOIDCStateMissing  = errors.New("auth: oidc state cookie missing")
	ErrOIDCStateInvalid  = errors.New("auth: oidc state cookie invalid")
	ErrOIDCStateExpired  = errors.New("auth: oidc state expired")
	ErrOIDCStateMismatch = errors.New("auth: oidc state does not match")
	ErrOIDCStateReplayed = errors.New("auth: oidc state already used")
)

// oidcFlow is what the server remembers about one authorization request.
// It travels sealed in oidcStateCookie, so any node can finish the flow.
type oidcFlow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Mode     string `json:"m"`
	// UserID and SessionID name the logged-in user (link mode only): the
	// callback links to that user, and only while that session lives.
	UserID    string `json:"u,omitempty"`
	SessionID string `json:"sid,omitempty"`
	Expires   int64  `json:"e"`
}

// newOIDCFlow draws fresh state, nonce and PKCE verifier.
func newOIDCFlow(mode string, now time.Time) (*oidcFlow, error) {
	var vals [3]string
	for i := range vals {
		b := make([]byte, oidcRandomBytes)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("auth: oidc random: %w", err)
		}
		vals[i] = base64.RawURLEncoding.EncodeToString(b)
	}
	return &oidcFlow{
		State: vals[0], Nonce: vals[1], Verifier: vals[2],
		Mode:    mode,
		Expires: now.Add(oidcStateTTL).Unix(),
	}, nil
}

// oidcCodec seals flows with AES-256-GCM so the browser can neither read
// (the PKCE verifier stays secret even from page scripts that could not
// read the HttpOnly cookie anyway) nor alter them.
type oidcCodec struct {
	aead cipher.AEAD
}

// oidcKeyInfo separates this key from any other use of the same secret.
const oidcKeyInfo = "sessionhub oidc state cookie v1"

// newOIDCCodec derives the sealing key from secret with HKDF. Every node
// configured with the same secret (the OAuth client secret) opens every
// other node's cookies; with no secret a random per-process key is used,
// which only works for a single node.
func newOIDCCodec(secret []byte) (*oidcCodec, error) {
	if len(secret) == 0 {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("auth: oidc key: %w", err)
		}
	}
	key, err := hkdf.Key(sha256.New, secret, nil, oidcKeyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("auth: oidc key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("auth: oidc cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("auth: oidc cipher: %w", err)
	}
	return &oidcCodec{aead: aead}, nil
}

// seal returns the cookie value for f.
func (c *oidcCodec) seal(f *oidcFlow) (string, error) {
	plain, err := json.Marshal(f)
	if err != nil {
		return "", fmt.Errorf("auth: oidc seal: %w", err)
	}
	nonce := make([]byte, c.aead.NonceSize(), c.aead.NonceSize()+len(plain)+c.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("auth: oidc seal: %w", err)
	}
	out := c.aead.Seal(nonce, nonce, plain, []byte(oidcStateCookie))
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// open authenticates and decodes a cookie value; any tampering, a value
// sealed under another key, or an expired flow is refused.
func (c *oidcCodec) open(value string, now time.Time) (*oidcFlow, error) {
	if value == "" {
		return nil, ErrOIDCStateMissing
	}
	if len(value) > oidcMaxCookie {
		return nil, ErrOIDCStateInvalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < c.aead.NonceSize()+c.aead.Overhead() {
		return nil, ErrOIDCStateInvalid
	}
	ns := c.aead.NonceSize()
	plain, err := c.aead.Open(nil, raw[:ns], raw[ns:], []byte(oidcStateCookie))
	if err != nil {
		return nil, ErrOIDCStateInvalid
	}
	var f oidcFlow
	if err := json.Unmarshal(plain, &f); err != nil || f.State == "" || f.Nonce == "" || f.Verifier == "" {
		return nil, ErrOIDCStateInvalid
	}
	if f.Mode != oidcModeLogin && f.Mode != oidcModeLink {
		return nil, ErrOIDCStateInvalid
	}
	if !now.Before(time.Unix(f.Expires, 0)) {
		return nil, ErrOIDCStateExpired
	}
	return &f, nil
}

// check opens the cookie and compares its state with the one the provider
// sent back, in constant time.
func (c *oidcCodec) check(cookieValue, state string, now time.Time) (*oidcFlow, error) {
	f, err := c.open(cookieValue, now)
	if err != nil {
		return nil, err
	}
	if state == "" || subtle.ConstantTimeCompare([]byte(f.State), []byte(state)) != 1 {
		return nil, ErrOIDCStateMismatch
	}
	return f, nil
}

// oidcStateCookieFor builds the cookie that carries a sealed flow.
// SameSite=Lax, not the session cookie's None: the provider's redirect back
// is a top-level GET navigation, which Lax lets through, while cross-site
// subrequests cannot carry it.
func oidcStateCookieFor(value string) *http.Cookie {
	return &http.Cookie{
		Name:     oidcStateCookie,
		Value:    value,
		Path:     "/",
		MaxAge:   int(oidcStateTTL / time.Second),
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}

// oidcClearCookie deletes the state cookie: every callback, good or bad,
// consumes it.
func oidcClearCookie() *http.Cookie {
	c := oidcStateCookieFor("")
	c.MaxAge = -1 // Go writes Max-Age=0
	return c
}

// usedStates remembers consumed states until they would have expired
// anyway, so a replayed callback (same cookie, same state) is refused even
// though the cookie itself cannot be revoked.
type usedStates interface {
	// markUsed records state and reports whether it was the first use.
	markUsed(ctx context.Context, state string, ttl time.Duration) (first bool, err error)
}

// stateKey hashes the state so the store never holds the value itself.
func stateKey(state string) string {
	sum := sha256.Sum256([]byte(state))
	return hex.EncodeToString(sum[:])
}

// redisUsedStates shares the used-state set between nodes; a callback
// replayed against another node is refused too.
type redisUsedStates struct {
	rdb    redis.UniversalClient
	prefix string
	// fallback keeps replay protection on this node while Redis is down,
	// like the per-node login throttle of the degraded mode.
	fallback *memoryUsedStates
}

func (r *redisUsedStates) markUsed(ctx context.Context, state string, ttl time.Duration) (bool, error) {
	k := stateKey(state)
	// Consult this node's fallback first: a state consumed during an
	// outage must stay consumed once Redis is back.
	if r.fallback.seen(k) {
		return false, nil
	}
	ok, err := r.rdb.SetNX(ctx, r.prefix+"oidc:state:"+k, 1, ttl).Result()
	if err != nil {
		first, _ := r.fallback.markUsed(ctx, state, ttl)
		return first, fmt.Errorf("auth: oidc used-state redis: %w", err)
	}
	return ok, nil
}

// memoryUsedStates is the single-node used-state set (memory mode, and the
// fallback of redisUsedStates).
type memoryUsedStates struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]time.Time // state hash → when it may be forgotten
	// sweepAt is the size at which expired entries are next dropped.
	sweepAt int
}

// memoryUsedStatesMinSweep keeps small maps from being swept on every
// insert.
const memoryUsedStatesMinSweep = 1024

func newMemoryUsedStates(now func() time.Time) *memoryUsedStates {
	return &memoryUsedStates{now: now, m: make(map[string]time.Time), sweepAt: memoryUsedStatesMinSweep}
}

func (m *memoryUsedStates) seen(k string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	exp, ok := m.m[k]
	return ok && m.now().Before(exp)
}

func (m *memoryUsedStates) markUsed(_ context.Context, state string, ttl time.Duration) (bool, error) {
	k := stateKey(state)
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if exp, ok := m.m[k]; ok && now.Before(exp) {
		return false, nil
	}
	// Sweep lazily, whenever the map has doubled since the last sweep:
	// entries live at most oidcStateTTL, so it stays about as small as the
	// logins of the last ten minutes at an amortised O(1) per insert.
	if len(m.m) >= m.sweepAt {
		for key, exp := range m.m {
			if !now.Before(exp) {
				delete(m.m, key)
			}
		}
		m.sweepAt = max(2*len(m.m), memoryUsedStatesMinSweep)
	}
	m.m[k] = now.Add(ttl)
	return true, nil
}
