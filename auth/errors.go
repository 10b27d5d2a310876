package auth

import (
	"context"
	"errors"
	"net"
	"net/http"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sessionhub/sessionhub/sessions"
)

// Sentinel errors of the auth HTTP surface and its stores. httpError maps
// each to one status and one API.md error code; anything unmapped is a
// logged 500 whose detail never reaches the client.
var (
	// ErrInvalidEmail means an email that is not a bare address.
	ErrInvalidEmail = errors.New("auth: invalid email")
	// ErrWeakPassword means a password outside 8 characters .. 1024 bytes.
	ErrWeakPassword = errors.New("auth: password must be 8 to 1024 characters")
	// ErrEmailTaken means another account has this email (any case).
	ErrEmailTaken = errors.New("auth: email taken")
	// ErrInvalidCredentials means a wrong email or password, never saying which.
	ErrInvalidCredentials = errors.New("auth: invalid credentials")
	// ErrUserNotFound means no user with this id or email.
	ErrUserNotFound = errors.New("auth: user not found")
	// ErrIdentityTaken means an external identity linked to another user.
	ErrIdentityTaken = errors.New("auth: identity taken")
	// ErrIdentityNotFound means no user is linked to this external identity.
	ErrIdentityNotFound = errors.New("auth: identity not found")
	// ErrInvalidScope means a scope that is not admin, sub:<pattern> or
	// pub:<pattern>.
	ErrInvalidScope = errors.New("auth: invalid scope")
	// ErrScopeNotHeld means a service session asked for a scope its user
	// does not hold.
	ErrScopeNotHeld = errors.New("auth: scope not held by the user")
	// ErrInvalidService means a service name outside [A-Za-z0-9._-]{1,64}.
	ErrInvalidService = errors.New("auth: invalid service name")
	// ErrUnavailable means a backing store cannot be reached; callers
	// answer 503 and may retry.
	ErrUnavailable = errors.New("auth: store unavailable")
	// ErrRateLimited means a rate limit or login backoff refused the call.
	ErrRateLimited = errors.New("auth: rate limited")
)

// apiError is an error that already knows its response. Handlers build them
// for request-shape problems (bad JSON, wrong media type, unknown route).
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return "auth: " + e.code + ": " + e.message }

func errBadRequest(msg string) error { return &apiError{http.StatusBadRequest, "bad_request", msg} }

var (
	errUnauthenticated = &apiError{http.StatusUnauthorized, "unauthenticated", "a valid session is required"}
	errCSRF            = &apiError{http.StatusForbidden, "csrf", "missing or wrong X-CSRF-Token"}
	errOrigin          = &apiError{http.StatusForbidden, "origin", "cross-origin request refused"}
	errForbidden       = &apiError{http.StatusForbidden, "forbidden", "this session lacks the admin scope"}
	errNotFound        = &apiError{http.StatusNotFound, "not_found", "not found"}
	errTooLarge        = &apiError{http.StatusRequestEntityTooLarge, "too_large", "request body over 64 KiB"}
	errMediaType       = &apiError{http.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: application/json"}
	errInvalidToken    = &apiError{http.StatusUnauthorized, "invalid_token", "the refresh token is invalid"}
)

// httpError is the one place that turns an error into a status, an API.md
// error code and a client-safe message. known is false for errors that
// must be logged because nothing mapped them.
func httpError(err error) (status int, code, message string, known bool) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae.status, ae.code, ae.message, true
	case errors.Is(err, ErrInvalidEmail):
		return http.StatusBadRequest, "invalid_email", "that is not a valid email address", true
	case errors.Is(err, ErrWeakPassword):
		return http.StatusBadRequest, "weak_password", "the password must be 8 to 1024 characters long", true
	case errors.Is(err, ErrInvalidScope):
		return http.StatusBadRequest, "invalid_scope", "scopes are admin, sub:<pattern> or pub:<pattern>", true
	case errors.Is(err, ErrScopeNotHeld):
		return http.StatusBadRequest, "invalid_scope", "the user does not hold every requested scope", true
	case errors.Is(err, ErrInvalidService):
		return http.StatusBadRequest, "bad_request", "invalid service name", true
	case errors.Is(err, ErrEmailTaken):
		return http.StatusConflict, "email_taken", "an account with this email exists", true
	case errors.Is(err, ErrIdentityTaken):
		return http.StatusConflict, "identity_taken", "that identity belongs to another account", true
	case errors.Is(err, ErrInvalidCredentials):
		return http.StatusUnauthorized, "invalid_credentials", "wrong email or password", true
	case errors.Is(err, ErrRefreshInvalid) || errors.Is(err, ErrRefreshReuse) || errors.Is(err, ErrTokenInvalid):
		return errInvalidToken.status, errInvalidToken.code, errInvalidToken.message, true
	case errors.Is(err, ErrRateLimited):
		return http.StatusTooManyRequests, "rate_limited", "too many attempts; retry later", true
	case errors.Is(err, sessions.ErrNotFound) || errors.Is(err, sessions.ErrInvalidToken):
		return errUnauthenticated.status, errUnauthenticated.code, errUnauthenticated.message, true
	case errors.Is(err, ErrUserNotFound):
		return errNotFound.status, errNotFound.code, errNotFound.message, true
	case unavailable(err):
		return http.StatusServiceUnavailable, "unavailable", "a backing store is unavailable; retry shortly", true
	}
	return http.StatusInternalServerError, "internal", "internal error", false
}

// unavailable reports whether err means a store could not be reached (as
// opposed to a store that answered with an error, which is a bug).
func unavailable(err error) bool {
	if errors.Is(err, ErrUnavailable) || errors.Is(err, sessions.ErrUnavailable) ||
		errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// The server answered: 57P01 admin shutdown and class 08
		// (connection exception) still mean "down".
		return pgErr.Code == "57P01" || len(pgErr.Code) == 5 && pgErr.Code[:2] == "08"
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}
