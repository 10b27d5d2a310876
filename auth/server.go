package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/sessionhub/sessionhub/sessions"
)

// Config tunes the auth HTTP surface. Every zero field takes the default
// named on it. Session idle TTL and absolute lifetime are the Store's
// (sessions.Config); the JWT lifetime is the Tokens' (TokenConfig.TTL,
// SESSIONHUB_TOKEN_TTL); the refresh grace is the Refresher's
// (RefreshConfig.Grace, SESSIONHUB_REFRESH_GRACE).
type Config struct {
	// PublicURL is SESSIONHUB_PUBLIC_URL; default "http://localhost:8080".
	// Its origin is trusted for cross-origin requests.
	PublicURL string
	// AllowedOrigins are extra "scheme://host[:port]" origins whose
	// cross-origin mutations are accepted (SESSIONHUB_ALLOWED_ORIGINS);
	// default none beyond PublicURL's origin.
	AllowedOrigins []string
	// TrustedProxies are the peers whose X-Forwarded-For is believed
	// (SESSIONHUB_TRUSTED_PROXIES); default none: the peer is the client.
	TrustedProxies []netip.Prefix
	// CookieSameSite is the session cookie's SameSite; zero means
	// http.SameSiteNoneMode (API.md default). http.SameSiteDefaultMode is
	// refused: the attribute is always written.
	CookieSameSite http.SameSite
	// CookiePartitioned adds Partitioned (CHIPS); default false.
	CookiePartitioned bool
	// DefaultScopes are given to every new user (SESSIONHUB_DEFAULT_SCOPES);
	// default none.
	DefaultScopes []string

	// LoginsPerIP is the budget of login and signup attempts per client IP
	// (IPv6: per /64) per minute; default 60.
	LoginsPerIP int
	// FreeFailures is how many failed logins an account gets before the
	// backoff starts; default 5.
	FreeFailures int
	// BackoffBase is the first backoff, doubled on each further failure;
	// default 1s.
	BackoffBase time.Duration
	// BackoffMax caps the backoff; default 15m.
	BackoffMax time.Duration
	// FailureMemory is how long an account's failures are remembered after
	// the backoff they caused ends; default 1h.
	FailureMemory time.Duration
	// TokensPerSession is the /session/token budget per session per
	// minute; default 60.
	TokensPerSession int
	// AckTimeout is how long acknowledged admin revocations wait for the
	// hubs; default 2s (API.md).
	AckTimeout time.Duration

	// Google enables Google login (GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET,
	// SESSIONHUB_OIDC_ISSUER); the zero value leaves it off (404). Its
	// PublicURL defaults to PublicURL above.
	Google GoogleConfig

	// Now is the clock; default time.Now. Rate limits and audit times use
	// it; session expiry uses the Store's own clock.
	Now func() time.Time
}

func (c *Config) setDefaults() error {
	if c.PublicURL == "" {
		c.PublicURL = "http://localhost:8080"
	}
	if c.CookieSameSite == 0 {
		c.CookieSameSite = http.SameSiteNoneMode
	}
	if c.CookieSameSite == http.SameSiteDefaultMode {
		return errors.New("auth: CookieSameSite must be None, Lax or Strict")
	}
	defInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	defInt(&c.LoginsPerIP, 60)
	defInt(&c.FreeFailures, 5)
	defInt(&c.TokensPerSession, 60)
	defDur(&c.BackoffBase, time.Second)
	defDur(&c.BackoffMax, 15*time.Minute)
	defDur(&c.FailureMemory, time.Hour)
	defDur(&c.AckTimeout, 2*time.Second)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.LoginsPerIP < 0 || c.FreeFailures < 0 || c.TokensPerSession < 0 || c.BackoffBase < 0 ||
		c.BackoffMax < c.BackoffBase || c.FailureMemory < 0 || c.AckTimeout < 0 {
		return errors.New("auth: negative or inconsistent rate-limit settings")
	}
	return nil
}

// NodeInfo describes one live hub node for GET /admin/stats.
type NodeInfo struct {
	ID          string
	Connections int
	StartedAt   time.Time
}

// Cluster is what the admin routes need from the hub (declared here, where
// it is consumed; cmd adapts *hub.Hub). It may be nil: counts are then 0.
type Cluster interface {
	// Acknowledge starts collecting acks for requestID; call it BEFORE
	// publishing the revocation. wait blocks up to timeout and returns the
	// sockets closed and the nodes that answered.
	Acknowledge(ctx context.Context, requestID string) (wait func(timeout time.Duration) (socketsClosed, nodesAcked int), err error)
	// Nodes lists the live nodes.
	Nodes(ctx context.Context) ([]NodeInfo, error)
}

// Deps are the collaborators of the auth surface.
type Deps struct {
	Store *sessions.Store // required
	// Pool is Postgres for users, identities and the audit log; nil means
	// in-memory stores (embedded mode).
	Pool *pgxpool.Pool
	// Redis holds the shared rate limits under RedisPrefix+"rl:"; nil means
	// per-node memory limits.
	Redis       redis.UniversalClient
	RedisPrefix string       // default "sh:"
	Tokens      *Tokens      // required: mints JWTs, serves the JWKS
	Refresher   *Refresher   // required: mobile refresh tokens
	Cluster     Cluster      // optional
	Logger      *slog.Logger // default slog.Default()
	// Registerer receives the metrics; nil registers nothing.
	Registerer prometheus.Registerer

	// Users and Auditor override the stores built from Pool (tests, or a
	// caller that shares them); nil means "built from Pool".
	Users   UserStore
	Auditor Auditor
}

// Server is the auth HTTP surface. It is safe for concurrent use.
type Server struct {
	cfg       Config
	store     *sessions.Store
	users     UserStore
	auditor   Auditor
	limits    limiter
	tokens    *Tokens
	refresher *Refresher
	cluster   Cluster
	log       *slog.Logger
	metrics   *metrics
	hash      *hasher
	cop       *http.CrossOriginProtection
	ips       clientIPs
	backoff   backoff
	google    *oidcClient // nil when Google login is off (google.go)
	seen      *userCache  // users served, for GET /session while Postgres is down
}

// New validates cfg and deps and returns the Server.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.Tokens == nil || deps.Refresher == nil {
		return nil, errors.New("auth: New needs a session Store, Tokens and a Refresher")
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.RedisPrefix == "" {
		deps.RedisPrefix = "sh:"
	}
	defaults, err := cleanScopes(cfg.DefaultScopes)
	if err != nil {
		return nil, fmt.Errorf("auth: default scopes: %w", err)
	}
	cfg.DefaultScopes = defaults
	s := &Server{
		cfg: cfg, store: deps.Store, users: deps.Users, auditor: deps.Auditor,
		tokens: deps.Tokens, refresher: deps.Refresher, cluster: deps.Cluster,
		log: deps.Logger, ips: clientIPs{trusted: cfg.TrustedProxies}, seen: newUserCache(cfg.Now),
		backoff: backoff{free: cfg.FreeFailures, base: cfg.BackoffBase, max: cfg.BackoffMax, memory: cfg.FailureMemory},
	}
	switch {
	case s.users != nil:
	case deps.Pool != nil:
		s.users = NewPostgresUsers(deps.Pool)
	default:
		s.users = NewMemoryUsers()
	}
	switch {
	case s.auditor != nil:
	case deps.Pool != nil:
		s.auditor = NewPostgresAuditor(deps.Pool)
	default:
		s.auditor = NewMemoryAuditor()
	}
	if deps.Redis != nil {
		s.limits = newRedisLimiter(deps.Redis, deps.RedisPrefix, cfg.Now, s.log)
	} else {
		s.limits = newMemLimiter(cfg.Now)
	}
	if s.metrics, err = newMetrics(deps.Registerer); err != nil {
		return nil, fmt.Errorf("auth: metrics: %w", err)
	}
	if s.hash, err = newHasher(defaultArgon); err != nil {
		return nil, err
	}
	s.cop = http.NewCrossOriginProtection()
	pub, err := url.Parse(cfg.PublicURL)
	if err != nil || pub.Scheme == "" || pub.Host == "" {
		return nil, fmt.Errorf("auth: bad public URL %q", cfg.PublicURL)
	}
	for _, o := range append([]string{pub.Scheme + "://" + pub.Host}, cfg.AllowedOrigins...) {
		if err := s.cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("auth: allowed origin: %w", err)
		}
	}
	if s.google, err = newGoogle(cfg.Google, deps.Redis, deps.RedisPrefix, cfg.Now, s); err != nil {
		return nil, err
	}
	s.store.OnExpire(s.recordExpired)
	return s, nil
}

func (s *Server) now() time.Time { return s.cfg.Now() }

// Users returns the user store (for cmd and the admin reports).
func (s *Server) Users() UserStore { return s.users }
