package hub

import "errors"

var (
	// ErrConfig is returned by New when Config or Deps is unusable.
	ErrConfig = errors.New("hub: bad configuration")
	// ErrDraining is returned when the hub no longer accepts work because a
	// Shutdown has begun.
	ErrDraining = errors.New("hub: draining")
	// ErrInvalidToken is what a Verifier or Sessions.FromCookie returns for a
	// credential that proves nothing; any error from them is treated the same.
	ErrInvalidToken = errors.New("hub: invalid token")
	// ErrBrokerClosed is returned by broker calls after the broker stopped.
	ErrBrokerClosed = errors.New("hub: broker closed")
)
