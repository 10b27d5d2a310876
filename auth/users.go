package auth

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// User is an account. PasswordHash is a PHC argon2id string, or "" for an
// account that only logs in with an external identity; it never leaves the
// server.
type User struct {
	ID            string
	Email         string // as the user typed it; unique case-insensitively
	EmailVerified bool
	Name          string
	PasswordHash  string
	Scopes        []string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Identity links an external login (provider, subject) to a user. It is
// keyed by (provider, subject), never by email.
type Identity struct {
	Provider      string
	Subject       string
	UserID        string
	Email         string
	EmailVerified bool
	CreatedAt     time.Time
}

// UserStore keeps users and identities: Postgres (users_postgres.go) or
// memory (users_memory.go). Each method is one transaction. Methods return
// ErrUserNotFound, ErrEmailTaken, ErrIdentityTaken or ErrIdentityNotFound as
// documented, and wrap ErrUnavailable when the store cannot be reached.
type UserStore interface {
	// CreateUser inserts u (ID and timestamps are set by the caller) or
	// returns ErrEmailTaken.
	CreateUser(ctx context.Context, u *User) error
	// UserByEmail finds a user by email, case-insensitively.
	UserByEmail(ctx context.Context, email string) (*User, error)
	// UserByID finds a user by id; a malformed id is ErrUserNotFound.
	UserByID(ctx context.Context, id string) (*User, error)
	// SetPasswordHash replaces the user's password hash.
	SetPasswordHash(ctx context.Context, id, hash string) error
	// AddScopes adds scopes the user lacks and returns the updated user.
	AddScopes(ctx context.Context, id string, scopes []string) (*User, error)
	// SearchUsers returns up to limit users whose email or name contains q
	// case-insensitively and literally (no wildcard characters), ordered
	// by lower(email), starting after the user whose email is after ("" =
	// from the first). Emails are unique case-insensitively, so this
	// keyset cursor is stable.
	SearchUsers(ctx context.Context, q, after string, limit int) ([]*User, error)
	// IdentityBySubject returns the identity (provider, subject).
	IdentityBySubject(ctx context.Context, provider, subject string) (*Identity, error)
	// LinkIdentity records id, or returns ErrIdentityTaken when (provider,
	// subject) already belongs to another user.
	LinkIdentity(ctx context.Context, id *Identity) error
	// CreateUserWithIdentity inserts u and its first identity together, so
	// that a failure never leaves an account without the identity it was
	// made for: ErrEmailTaken or ErrIdentityTaken, and nothing written.
	CreateUserWithIdentity(ctx context.Context, u *User, id *Identity) error
}

// maxEmailBytes is RFC 5321's path limit; maxNameChars keeps display names
// to something a page can show.
const (
	maxEmailBytes = 254
	maxNameChars  = 200
)

// normalizeEmail checks that s is a bare address ("a@b.c", no display name,
// no surrounding space) and returns it unchanged; uniqueness and lookups use
// its lower-case form.
func normalizeEmail(s string) (string, error) {
	if s == "" || len(s) > maxEmailBytes || strings.TrimSpace(s) != s || !utf8.ValidString(s) {
		return "", ErrInvalidEmail
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", ErrInvalidEmail
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || domain == "" || strings.ContainsAny(s, "\"<>()[]\\,;: \t") {
		return "", ErrInvalidEmail
	}
	return s, nil
}

func checkName(n string) error {
	if !utf8.ValidString(n) || utf8.RuneCountInString(n) > maxNameChars ||
		strings.IndexFunc(n, unicode.IsControl) >= 0 {
		return errBadRequest("name must be at most 200 printable characters")
	}
	return nil
}

// validScope reports whether s is "admin", "sub:<pattern>" or
// "pub:<pattern>", where a pattern is printable, has no spaces (the JWT
// scope claim is space-separated) and has "*" only as its last character.
func validScope(s string) bool {
	if s == "admin" {
		return true
	}
	kind, pat, ok := strings.Cut(s, ":")
	if !ok || (kind != "sub" && kind != "pub") || pat == "" || len(s) > 200 {
		return false
	}
	for i, r := range pat {
		if r <= ' ' || r == 0x7f || !unicode.IsPrint(r) || (r == '*' && i != len(pat)-1) {
			return false
		}
	}
	return true
}

// cleanScopes validates, de-duplicates and sorts scopes.
func cleanScopes(in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !validScope(s) {
			return nil, fmt.Errorf("%w: %q", ErrInvalidScope, s)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// holdsScope reports whether a user holding held may hand want to a
// service session: an exact match, or a narrower pattern under a held
// wildcard of the same kind ("sub:room:42" under "sub:room:*"). admin is
// only ever held exactly.
func holdsScope(held []string, want string) bool {
	for _, h := range held {
		if h == want {
			return true
		}
		if p, ok := strings.CutSuffix(h, "*"); ok && h != "admin" && strings.HasPrefix(want, p) &&
			strings.Contains(p, ":") {
			return true
		}
	}
	return false
}

// newUserID returns a random (version 4) UUID.
func newUserID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// uuidShape reports whether s has the canonical 8-4-4-4-12 hex shape, so
// that a malformed id never reaches Postgres (which would answer an error).
func uuidShape(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}
