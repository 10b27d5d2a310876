package sessions

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// Kind says how a session is carried by its client.
type Kind string

const (
	KindBrowser Kind = "browser" // a cookie
	KindRefresh Kind = "refresh" // a mobile device holding a refresh token
	KindService Kind = "service" // a worker holding "Authorization: Session"
)

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	return k == KindBrowser || k == KindRefresh || k == KindService
}

// Reason says why a session ended. The values are the report labels of
// API.md.
type Reason string

const (
	ReasonLogout         Reason = "logout"
	ReasonLogoutAll      Reason = "logout_all"
	ReasonRevoked        Reason = "revoked" // the user revoked one of their devices
	ReasonPasswordChange Reason = "password_change"
	ReasonAdmin          Reason = "admin"
	ReasonRefreshReuse   Reason = "refresh_reuse"
	ReasonExpired        Reason = "expired"
)

// SecretPrefix starts every session secret so that secret scanners
// recognise a leaked cookie or service token.
const SecretPrefix = "shs_"

const (
	idBytes     = 16 // 128-bit public id: unguessable, short in URLs
	secretBytes = 32 // 256-bit secret (SECURITY.md item 1)
	csrfBytes   = 32
)

var b64 = base64.RawURLEncoding

// idLen and secretLen are the encoded lengths, checked before any lookup so
// that garbage never reaches a backend.
var (
	idLen     = b64.EncodedLen(idBytes)
	secretLen = len(SecretPrefix) + b64.EncodedLen(secretBytes)
)

// Token is a parsed session token "<id>.<secret>". Only the id is ever
// stored or logged; the secret lives in the client alone.
type Token struct {
	ID     string
	Secret string
}

// String returns the wire form "<id>.<secret>".
func (t Token) String() string { return t.ID + "." + t.Secret }

// Hash returns SHA-256 of the secret, the only form of it kept at rest.
func (t Token) Hash() []byte { return HashSecret(t.Secret) }

// HashSecret returns SHA-256 of secret.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// ParseToken splits "<id>.<secret>" and checks both parts' shape. It never
// touches a backend.
func ParseToken(s string) (Token, error) {
	id, secret, ok := strings.Cut(s, ".")
	if !ok || !ValidID(id) || len(secret) != secretLen ||
		!strings.HasPrefix(secret, SecretPrefix) || !IsBase64URL(secret[len(SecretPrefix):]) {
		return Token{}, ErrInvalidToken
	}
	return Token{ID: id, Secret: secret}, nil
}

// ValidID reports whether id has the shape of a session id, so that a
// malformed id in a URL is refused before any lookup.
func ValidID(id string) bool { return len(id) == idLen && IsBase64URL(id) }

// IsBase64URL reports whether s holds only bytes of unpadded base64url
// (RFC 4648 §5), the alphabet of every random id and secret sessionhub
// makes (RandomString); auth checks its refresh tokens with it too.
func IsBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		if !b64URL[s[i]] {
			return false
		}
	}
	return true
}

// b64URL marks the bytes of unpadded base64url (every request checks a
// token's ~70 of them).
var b64URL = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	}
	return t
}()

// NewToken makes a fresh id and secret from crypto/rand.
func NewToken() Token {
	return Token{ID: RandomString(idBytes), Secret: SecretPrefix + RandomString(secretBytes)}
}

// RandomString returns n random bytes from crypto/rand, base64url encoded.
func RandomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand never fails on supported platforms (Go 1.24+ crashes
		// the program itself); this is unreachable.
		panic(fmt.Sprintf("sessions: crypto/rand: %v", err))
	}
	return b64.EncodeToString(b)
}

// Session is one server-side session. SecretHash is the only trace of the
// secret; never send it to a client.
type Session struct {
	ID                string
	UserID            string
	Kind              Kind
	Scopes            []string
	CSRFToken         string
	Device            string // "Pixel 8" for refresh sessions, the service name for service sessions
	IP                string
	UserAgent         string
	CreatedAt         time.Time // also the authentication time: refreshes keep it
	LastSeenAt        time.Time
	ExpiresAt         time.Time // sliding: LastSeenAt + idle TTL, capped by AbsoluteExpiresAt
	AbsoluteExpiresAt time.Time
	SecretHash        []byte

	// RevokedAt and RevokeReason are set only by the durable backend.
	RevokedAt    time.Time
	RevokeReason Reason
	// SyncedAt is when the durable copy last received LastSeenAt/ExpiresAt;
	// the hot backend keeps it to throttle write-behind.
	SyncedAt time.Time
}

// MatchSecret compares the token's secret with the stored hash in constant
// time.
func (s *Session) MatchSecret(t Token) bool {
	return subtle.ConstantTimeCompare(s.SecretHash, t.Hash()) == 1
}

// MatchCSRF compares a presented CSRF token in constant time.
func (s *Session) MatchCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(s.CSRFToken), []byte(token)) == 1
}

// Live reports whether the session is unrevoked and unexpired at now.
func (s *Session) Live(now time.Time) bool {
	return s.RevokedAt.IsZero() && now.Before(s.ExpiresAt) && now.Before(s.AbsoluteExpiresAt)
}

// MaxAge is what remains of the session at now: min(idle left, absolute
// left), never negative. It is the cookie's Max-Age and the hot TTL.
func (s *Session) MaxAge(now time.Time) time.Duration {
	d := min(s.ExpiresAt.Sub(now), s.AbsoluteExpiresAt.Sub(now))
	return max(d, 0)
}

// EventKind says whether a revocation names one session or every session of
// a user.
type EventKind string

const (
	EventSession EventKind = "session"
	EventUser    EventKind = "user"
)

// Event is what a revocation publishes on the revocation channel. Hubs close
// matching sockets on receipt: EventSession with 4001 (4003 when Reason is
// ReasonExpired), EventUser with 4002.
type Event struct {
	Kind      EventKind `json:"kind"`
	SessionID string    `json:"session_id,omitempty"`
	UserID    string    `json:"user_id"`
	Reason    Reason    `json:"reason"`
	IssuedAt  time.Time `json:"issued_at"`
	// RequestID, when set, asks every hub to acknowledge how many sockets it
	// closed (admin routes).
	RequestID string `json:"request_id,omitempty"`
}

// Status is a session's state as the hub sees it.
type Status int

const (
	StatusAlive Status = iota
	StatusRevoked
	StatusExpired
	// StatusLoggedOut is a session ended by its user's global logout, so a
	// hub that learns of it from a sweep rather than the event still closes
	// with 4002, not 4001.
	StatusLoggedOut
)

func (s Status) String() string {
	switch s {
	case StatusAlive:
		return "alive"
	case StatusRevoked:
		return "revoked"
	case StatusLoggedOut:
		return "logged_out"
	default:
		return "expired"
	}
}
