package auth

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sessionhub/sessionhub/sessions"
)

// ErrTokenInvalid means a JWT was refused: malformed, not EdDSA, unknown
// kid, a header that carries key material, a bad signature, or a claim that
// fails (iss, aud, exp, nbf, iat, lifetime, sub, sid, jti). Callers answer
// 401 and never echo the wrapped detail to a client.
var ErrTokenInvalid = errors.New("auth: invalid token")

const (
	// DefaultTokenTTL is the JWT lifetime: long enough to open a socket or
	// finish a worker call, short enough that no revocation list is needed.
	DefaultTokenTTL = 5 * time.Minute
	// maxTokenTTL is the cap of SECURITY.md item 24 (exp ≤ iat + 300 s).
	maxTokenTTL = 5 * time.Minute
	// DefaultAudience is the aud claim of every token.
	DefaultAudience = "sessionhub"
	// clockSkew tolerates clocks of different nodes disagreeing on exp, nbf
	// and iat; 30 s covers NTP-synced hosts with a wide margin.
	clockSkew = 30 * time.Second
	// maxTokenBytes bounds what Verify parses: our tokens are ~500 bytes
	// even with many scopes; a header of this size is an attack.
	maxTokenBytes = 8 << 10
	// jtiBytes makes token ids unique without coordination.
	jtiBytes = 16
)

// TokenConfig configures Tokens. Zero values take the documented defaults.
type TokenConfig struct {
	Issuer   string           // iss; required: SESSIONHUB_PUBLIC_URL
	Audience string           // aud; "" → "sessionhub"
	TTL      time.Duration    // exp - iat; 0 → 5m; at most 5m (SECURITY.md 24)
	Now      func() time.Time // nil → time.Now
}

// Claims is what a verified JWT says.
type Claims struct {
	UserID    string   // sub
	SessionID string   // sid: the hub checks at handshake that it is alive
	Scopes    []string // scope, split on spaces
	Service   string   // svc: the worker's name, for service sessions only
	ID        string   // jti
	IssuedAt  time.Time
	ExpiresAt time.Time
	// AuthTime is when the user authenticated: the session's CreatedAt,
	// kept across refreshes (SECURITY.md 29). Zero if the token lacks it.
	AuthTime time.Time
}

// Tokens mints and verifies the EdDSA JWTs of sockets and workers. It is
// safe for concurrent use.
type Tokens struct {
	cfg    TokenConfig
	keys   *KeySet
	method jwt.SigningMethod
	parser *jwt.Parser
}

// NewTokens validates cfg and returns Tokens signing with keys' active key.
func NewTokens(cfg TokenConfig, keys *KeySet) (*Tokens, error) {
	if keys == nil {
		return nil, errors.New("auth: NewTokens: nil key set")
	}
	if cfg.Issuer == "" {
		return nil, errors.New("auth: NewTokens: empty issuer (SESSIONHUB_PUBLIC_URL)")
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTokenTTL
	}
	if cfg.TTL < time.Second || cfg.TTL > maxTokenTTL {
		return nil, fmt.Errorf("auth: NewTokens: token TTL %s outside [1s, %s]", cfg.TTL, maxTokenTTL)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Tokens{
		cfg:    cfg,
		keys:   keys,
		method: jwt.SigningMethodEdDSA,
		parser: jwt.NewParser(
			// Pin the algorithm: no "none", no HMAC keyed with our
			// public key, nothing but Ed25519.
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithNotBeforeRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(clockSkew),
			jwt.WithTimeFunc(cfg.Now),
			jwt.WithStrictDecoding(),
		),
	}, nil
}

// TTL returns the lifetime of minted tokens (expires_in).
func (t *Tokens) TTL() time.Duration { return t.cfg.TTL }

// Keys returns the key set, for serving /.well-known/jwks.json.
func (t *Tokens) Keys() *KeySet { return t.keys }

// tokenClaims is the wire form. aud is a plain string (not an array) and
// the times are whole seconds.
type tokenClaims struct {
	Issuer    string           `json:"iss"`
	Audience  string           `json:"aud"`
	Subject   string           `json:"sub"`
	SessionID string           `json:"sid"`
	Scope     *string          `json:"scope"` // pointer: present-but-empty is valid, absent is not
	Service   string           `json:"svc,omitempty"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	ExpiresAt *jwt.NumericDate `json:"exp"`
	AuthTime  *jwt.NumericDate `json:"auth_time,omitempty"`
	ID        string           `json:"jti"`
}

func (c *tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }
func (c *tokenClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt, nil }
func (c *tokenClaims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore, nil }
func (c *tokenClaims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c *tokenClaims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c *tokenClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings{c.Audience}, nil
}

// Mint signs a token for s with the active key: sub = user, sid = session,
// scope = the session's scopes, svc = the service name for service
// sessions, auth_time = the session's CreatedAt. It returns the token and
// its lifetime (expires_in). The caller has checked that s is live; a
// session already marked revoked is refused.
func (t *Tokens) Mint(s *sessions.Session) (token string, ttl time.Duration, err error) {
	if s == nil || s.ID == "" || s.UserID == "" {
		return "", 0, errors.New("auth: mint: session without id or user")
	}
	if !s.RevokedAt.IsZero() {
		return "", 0, errors.New("auth: mint: session is revoked")
	}
	now := t.cfg.Now().Truncate(time.Second)
	scope := strings.Join(s.Scopes, " ")
	c := &tokenClaims{
		Issuer:    t.cfg.Issuer,
		Audience:  t.cfg.Audience,
		Subject:   s.UserID,
		SessionID: s.ID,
		Scope:     &scope,
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(t.cfg.TTL)),
		ID:        sessions.RandomString(jtiBytes),
	}
	if s.Kind == sessions.KindService {
		c.Service = s.Device
	}
	if !s.CreatedAt.IsZero() {
		c.AuthTime = jwt.NewNumericDate(s.CreatedAt)
	}
	tok := jwt.NewWithClaims(t.method, c)
	tok.Header["kid"] = t.keys.activeKID
	signed, err := tok.SignedString(t.keys.active)
	if err != nil {
		return "", 0, fmt.Errorf("auth: mint: %w", err)
	}
	return signed, t.cfg.TTL, nil
}

// Verify checks raw and returns its claims, or an error wrapping
// ErrTokenInvalid. It accepts EdDSA only, signed by a key of the set named
// by the header's kid (verify-only keys included); no header may carry key
// material. It checks iss, aud, exp, nbf and iat with 30 s of skew, that
// exp - iat is at most the configured TTL, and that sub, sid, jti and scope
// are present.
func (t *Tokens) Verify(raw string) (*Claims, error) {
	if len(raw) > maxTokenBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrTokenInvalid, maxTokenBytes)
	}
	var c tokenClaims
	_, err := t.parser.ParseWithClaims(raw, &c, t.keyFor)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTokenInvalid, err)
	}
	// The parser checked that exp, nbf and iat, when present, are in
	// range; it requires exp and nbf. The rest is ours.
	switch {
	case c.IssuedAt == nil:
		return nil, fmt.Errorf("%w: missing iat", ErrTokenInvalid)
	case c.ExpiresAt.Sub(c.IssuedAt.Time) > t.cfg.TTL:
		return nil, fmt.Errorf("%w: exp - iat exceeds %s", ErrTokenInvalid, t.cfg.TTL)
	case c.Subject == "":
		return nil, fmt.Errorf("%w: missing sub", ErrTokenInvalid)
	case !sessions.ValidID(c.SessionID):
		return nil, fmt.Errorf("%w: missing or malformed sid", ErrTokenInvalid)
	case c.ID == "":
		return nil, fmt.Errorf("%w: missing jti", ErrTokenInvalid)
	case c.Scope == nil:
		return nil, fmt.Errorf("%w: missing scope", ErrTokenInvalid)
	}
	out := &Claims{
		UserID:    c.Subject,
		SessionID: c.SessionID,
		Scopes:    strings.Fields(*c.Scope),
		Service:   c.Service,
		ID:        c.ID,
		IssuedAt:  c.IssuedAt.Time,
		ExpiresAt: c.ExpiresAt.Time,
	}
	if c.AuthTime != nil {
		out.AuthTime = c.AuthTime.Time
	}
	return out, nil
}

// keyFor is the jwt.Keyfunc: it refuses any header but alg, kid and typ
// and returns the public key named by kid. It never takes a key from the
// token.
func (t *Tokens) keyFor(tok *jwt.Token) (any, error) {
	// Sorted, so that a token with several bad headers is always refused
	// for the same one (map order would make the reason vary).
	for _, h := range slices.Sorted(maps.Keys(tok.Header)) {
		if !allowedHeader(h, tok.Header[h]) {
			return nil, fmt.Errorf("header %.20q not allowed", h)
		}
	}
	kid, ok := tok.Header["kid"].(string)
	if !ok || kid == "" {
		return nil, errors.New("missing kid")
	}
	pub, ok := t.keys.publicKey(kid)
	if !ok {
		return nil, errors.New("unknown kid")
	}
	return pub, nil
}

// allowedHeader reports whether a JOSE header may appear in a token of
// ours. Everything else is refused, above all jwk, jku, x5u and x5c (key
// material or key URLs chosen by the sender) and crit (extensions we do
// not implement).
func allowedHeader(name string, value any) bool {
	switch name {
	case "alg", "kid":
		return true // checked by the parser and by keyFor
	case "typ":
		return value == "JWT"
	default:
		return false
	}
}
