package hub

import "errors"

var (
	// ErrConfig is returned by New when Config or Deps is unusable.
	ErrConfig = errors.New("hub: bad configuration")
	// ErrInvalidToken is what a Verifier or Sessions.FromCookie returns for a
	// credential that proves nothing; any error from them is treated the same.
	ErrInvalidToken = errors.New("hub: invalid token")
)
