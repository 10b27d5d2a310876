package sessions

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound means no such session, or a session that is revoked or
	// expired. Callers answer 401 (or 404 for listing by id) and learn
	// nothing more.
	ErrNotFound = errors.New("sessions: not found")
	// ErrInvalidToken means the presented token is malformed or its secret
	// does not match. Callers answer 401.
	ErrInvalidToken = errors.New("sessions: invalid token")
	// ErrUnavailable means a backend the operation needs is unreachable.
	// Callers answer 503.
	ErrUnavailable = errors.New("sessions: backend unavailable")

	// errHotOpen is what a hot call returns, at once, while the breaker
	// holds the hot backend down (breaker.go).
	errHotOpen = fmt.Errorf("%w: hot backend down, not retried yet", ErrUnavailable)
)
