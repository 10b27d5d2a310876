package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Identity is who a socket or a publish acts for: what a verified JWT or a
// session cookie proves.
type Identity struct {
	UserID    string
	SessionID string
	Scopes    []string
	// Service is the worker name of a service session, "" for people.
	Service string
}

// Verifier checks a socket/worker JWT. cmd adapts auth.Tokens to it. Any
// error means 401. ctx is the request's: cmd's adapter leaves the verified
// session id there for the access log.
type Verifier interface {
	Verify(ctx context.Context, token string) (Identity, error)
}

// SessionState is a session's liveness as the hub needs it.
type SessionState int

// The values match sessions.Status, so cmd converts them by number.
const (
	SessionAlive SessionState = iota
	SessionRevoked
	SessionExpired
	SessionLoggedOut // ended by the user's global logout: 4002
)

// Sessions is the hub's view of the session store. cmd adapts
// sessions.Store to it.
type Sessions interface {
	// Status reports, for each id, whether its session is alive, revoked or
	// expired, in one round trip to the hot store.
	Status(ctx context.Context, sessionIDs []string) ([]SessionState, error)
	// FromCookie authenticates the request's session cookie (a browser
	// relying on its cookie alone); an error means no live session. On
	// success it may set headers on w (the cookie re-sent with a fresh
	// Max-Age), which leave with the 101 response.
	FromCookie(w http.ResponseWriter, r *http.Request) (Identity, error)
}

// Config tunes a Hub. Zero fields take the defaults named on each.
type Config struct {
	// NodeID names this node in welcome frames, acks and /admin/stats
	// (default: 12 random hex characters).
	NodeID string
	// Prefix starts every Redis key and pub/sub channel (default "sh:").
	Prefix string
	// AllowedOrigins are the exact origins (scheme://host[:port]) whose
	// browsers may open sockets. Empty: every request carrying an Origin is
	// refused.
	AllowedOrigins []string
	// Heartbeat is the ping interval; a peer silent for two of them is
	// closed (default 25s).
	Heartbeat time.Duration
	// SweepInterval is how often every live session is re-checked
	// (default 30s).
	SweepInterval time.Duration
	// SendQueueBytes bounds the bytes queued for one socket before it is
	// closed as a slow consumer (default 1 MiB).
	SendQueueBytes int
	// MaxSocketsPerUser is the cluster-wide limit per user (default 32).
	MaxSocketsPerUser int
	// Drain is the window over which Shutdown closes sockets (default 5s).
	Drain time.Duration
	// WriteTimeout bounds one socket write (default 10s).
	WriteTimeout time.Duration
	// Logger (default: discard).
	Logger *slog.Logger
	// Registerer receives the hub's metrics (default: a private registry).
	Registerer prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time

	// beatEvery overrides the periodic presence beat (tests only, so that
	// one can tell a debounced beat from a periodic one).
	beatEvery time.Duration
}

// Deps are the hub's collaborators.
type Deps struct {
	Verifier Verifier
	Sessions Sessions
	// Redis makes the hub one node of a cluster sharing Prefix. Nil: the
	// in-memory broker (single node), fed revocations by HandleRevocation.
	Redis redis.UniversalClient
}

// Defaults, each with why.
const (
	defaultHeartbeat    = 25 * time.Second // under the 30 s idle cut of common proxies
	defaultSweep        = 30 * time.Second // API.md's hard bound for a lost revocation
	defaultSendQueue    = 1 << 20          // ~16 ms of a 500 Mbit/s link; a client further behind is stuck
	defaultMaxPerUser   = 32               // API.md
	defaultDrain        = 5 * time.Second  // API.md; leaves room under the 10 s exit budget
	defaultWriteTimeout = 10 * time.Second // a peer that accepts no byte for this long is gone
)

func (c *Config) withDefaults() (Config, error) {
	out := *c
	if out.NodeID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		out.NodeID = hex.EncodeToString(b[:])
	}
	if strings.ContainsAny(out.NodeID, "| \t\r\n") {
		return out, fmt.Errorf("%w: NodeID %q contains a separator", ErrConfig, out.NodeID)
	}
	if out.Prefix == "" {
		out.Prefix = "sh:"
	}
	if out.Heartbeat <= 0 {
		out.Heartbeat = defaultHeartbeat
	}
	if out.SweepInterval <= 0 {
		out.SweepInterval = defaultSweep
	}
	if out.SendQueueBytes <= 0 {
		out.SendQueueBytes = defaultSendQueue
	}
	if out.MaxSocketsPerUser <= 0 {
		out.MaxSocketsPerUser = defaultMaxPerUser
	}
	if out.Drain <= 0 {
		out.Drain = defaultDrain
	}
	if out.WriteTimeout <= 0 {
		out.WriteTimeout = defaultWriteTimeout
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	if out.Registerer == nil {
		out.Registerer = prometheus.NewRegistry()
	}
	if out.Now == nil {
		out.Now = time.Now
	}
	norm := make([]string, 0, len(out.AllowedOrigins))
	for _, o := range out.AllowedOrigins {
		n, ok := normalizeOrigin(o)
		if !ok {
			return out, fmt.Errorf("%w: allowed origin %q is not scheme://host[:port]", ErrConfig, o)
		}
		norm = append(norm, n)
	}
	out.AllowedOrigins = norm
	return out, nil
}

// normalizeOrigin lower-cases an origin and drops a default port, so that
// "https://App.example:443" and "https://app.example" compare equal.
func normalizeOrigin(o string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if scheme == "https" {
		host = strings.TrimSuffix(host, ":443")
	} else {
		host = strings.TrimSuffix(host, ":80")
	}
	return scheme + "://" + host, true
}
