package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionhub/sessionhub/auth"
	"github.com/sessionhub/sessionhub/hub"
	"github.com/sessionhub/sessionhub/sessions"
	"github.com/sessionhub/sessionhub/web"
)

// app is the wired server: the public handler, the loops to run in the
// background and what to drain on shutdown.
type app struct {
	cfg      *Config
	log      *slog.Logger
	reg      *prometheus.Registry
	handler  http.Handler
	draining atomic.Bool
	runners  []runner
	// drainers run in order when shutdown starts, while the public listener
	// still answers (readiness says draining).
	drainers []func(ctx context.Context) error
}

// runner is a background loop owned by the app.
type runner struct {
	name string
	run  func(ctx context.Context) error
}

// wire builds auth, hub and web on top of the backends, and the public
// router. The order follows the dependencies: the JWT minter first (the hub
// verifies its tokens), then the hub (auth's Cluster), then auth.
func wire(cfg *Config, b *backends, log *slog.Logger, reg *prometheus.Registry) (*app, error) {
	a := &app{cfg: cfg, log: log, reg: reg}
	a.runners = append(a.runners, runner{"sessions", b.store.Run})

	tokens, err := newTokens(cfg, log)
	if err != nil {
		return nil, err
	}
	// The hub needs auth's cookie check and auth needs the hub (its
	// Cluster): hs gets auth's check once auth exists, before any request.
	hs := &hubSessions{store: b.store}
	h, err := hub.New(hub.Config{
		Prefix:            cfg.RedisPrefix,
		AllowedOrigins:    cfg.AllowedOrigins,
		Heartbeat:         cfg.Heartbeat,
		SweepInterval:     cfg.SweepInterval,
		SendQueueBytes:    cfg.SendQueue,
		MaxSocketsPerUser: cfg.MaxSocketsPerUser,
		Drain:             cfg.Drain,
		Logger:            log.With("component", "hub"),
		Registerer:        reg,
	}, hub.Deps{
		Verifier: hubVerifier{tokens},
		Sessions: hs,
		Redis:    b.rdb, // nil in memory mode: the hub's in-memory broker
	})
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	if b.mem != nil {
		// In memory mode revocations never touch Redis: hand them to the
		// hub in process. The subscription lives as long as the process.
		b.mem.Subscribe(func(e sessions.Event) {
			if payload, err := json.Marshal(e); err == nil {
				h.HandleRevocation(payload)
			}
		})
	}
	a.runners = append(a.runners, runner{"hub", h.Run})
	a.drainers = append(a.drainers, h.Shutdown)

	authSrv, err := newAuth(cfg, b, tokens, log, reg, hubCluster{h})
	if err != nil {
		return nil, err
	}
	hs.auth = authSrv

	hm, err := newHTTPMetrics(reg)
	if err != nil {
		return nil, err
	}
	if err := registerStoreCollector(reg, b.store, &a.draining); err != nil {
		return nil, err
	}
	r := chi.NewRouter()
	r.Use(requestID, hm.observe(log), limitHeaders, withCORS(cfg.AllowedOrigins), limitBody)
	addRoutes(r, routes{
		health:   b.store,
		draining: &a.draining,
		auth:     authSrv,
		hub:      h,
		web:      web.Handler(web.Config{GoogleEnabled: cfg.GoogleEnabled()}),
	})
	a.handler = r
	return a, nil
}

// newTokens loads the signing keys and makes the JWT minter/verifier.
func newTokens(cfg *Config, log *slog.Logger) (*auth.Tokens, error) {
	keys, err := loadKeys(cfg, log)
	if err != nil {
		return nil, err
	}
	return auth.NewTokens(auth.TokenConfig{Issuer: cfg.PublicURL.String(), TTL: cfg.TokenTTL}, keys)
}

// newAuth builds the auth surface: the refresh-token rotator and the server
// itself. The command-line tools use it too (nil registerer and cluster),
// so that they have the HTTP routes' effects and audit trail.
func newAuth(cfg *Config, b *backends, tokens *auth.Tokens, log *slog.Logger, reg prometheus.Registerer, cluster auth.Cluster) (*auth.Server, error) {
	refreshStore := auth.NewRefreshMemory()
	if b.pool != nil {
		refreshStore = auth.NewRefreshPostgres(b.pool)
	}
	grace := cfg.RefreshGrace
	if grace == 0 {
		grace = -1 // the Refresher reads 0 as "default"; ours means "no retries"
	}
	refresher, err := auth.NewRefresher(auth.RefreshConfig{Grace: grace}, refreshStore)
	if err != nil {
		return nil, err
	}
	acfg := auth.Config{
		PublicURL:         cfg.PublicURL.String(),
		AllowedOrigins:    cfg.AllowedOrigins,
		TrustedProxies:    cfg.TrustedProxies,
		CookieSameSite:    cfg.CookieSameSite,
		CookiePartitioned: cfg.CookiePartitioned,
		DefaultScopes:     cfg.DefaultScopes,
	}
	if cfg.GoogleEnabled() {
		acfg.Google = auth.GoogleConfig{
			ClientID: cfg.GoogleClientID, ClientSecret: cfg.GoogleClientSecret,
			Issuer: cfg.OIDCIssuer, PublicURL: cfg.PublicURL.String(),
		}
	}
	deps := auth.Deps{
		Store: b.store, Pool: b.pool, RedisPrefix: cfg.RedisPrefix,
		Tokens: tokens, Refresher: refresher, Cluster: cluster,
		Logger: log, Registerer: reg,
	}
	if b.rdb != nil {
		deps.Redis = b.rdb
	}
	srv, err := auth.New(acfg, deps)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return srv, nil
}

// loadKeys reads SESSIONHUB_KEYS_FILE, or makes an ephemeral key: fine for
// one node in memory, wrong for a cluster (each node would sign with its
// own key, and tokens would die with the process), hence the warning.
func loadKeys(cfg *Config, log *slog.Logger) (*auth.KeySet, error) {
	if cfg.KeysFile == "" {
		if !cfg.Memory() {
			log.Warn("SESSIONHUB_KEYS_FILE is not set: signing with an ephemeral key; tokens are refused by other nodes and after a restart (sessionhub keys generate)")
		}
		return auth.EphemeralKeySet()
	}
	data, err := os.ReadFile(cfg.KeysFile)
	if err != nil {
		return nil, &ConfigError{Name: "SESSIONHUB_KEYS_FILE", Err: fmt.Errorf("cannot read the file: %w", err)}
	}
	keys, err := auth.ParseKeySet(data)
	if err != nil {
		return nil, &ConfigError{Name: "SESSIONHUB_KEYS_FILE", Err: fmt.Errorf("not a usable JWK set (make one with `sessionhub keys generate`): %w", err)}
	}
	return keys, nil
}

// hubVerifier adapts auth.Tokens to hub.Verifier. A token it accepts
// names its session in the request's access log line; one it refuses
// names none.
type hubVerifier struct{ tokens *auth.Tokens }

func (v hubVerifier) Verify(ctx context.Context, token string) (hub.Identity, error) {
	c, err := v.tokens.Verify(token)
	if err != nil {
		return hub.Identity{}, err
	}
	noteVerifiedSession(ctx, c.SessionID)
	return hub.Identity{UserID: c.UserID, SessionID: c.SessionID, Scopes: c.Scopes, Service: c.Service}, nil
}

// hubSessions adapts sessions.Store to hub.Sessions, and auth's cookie
// check to its FromCookie.
type hubSessions struct {
	store *sessions.Store
	auth  *auth.Server
}

func (s *hubSessions) Status(ctx context.Context, ids []string) ([]hub.SessionState, error) {
	st, err := s.store.Status(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]hub.SessionState, len(st))
	for i, x := range st {
		switch x {
		case sessions.StatusAlive:
			out[i] = hub.SessionAlive
		case sessions.StatusRevoked:
			out[i] = hub.SessionRevoked
		case sessions.StatusLoggedOut:
			out[i] = hub.SessionLoggedOut
		default:
			out[i] = hub.SessionExpired
		}
	}
	return out, nil
}

// FromCookie authenticates a cookie-only socket handshake through auth
// (browser sessions only, sliding the session and counting a refused
// token like any cookie-authenticated request).
func (s *hubSessions) FromCookie(w http.ResponseWriter, r *http.Request) (hub.Identity, error) {
	sess, err := s.auth.CookieSession(w, r)
	if err != nil {
		return hub.Identity{}, err
	}
	return hub.Identity{UserID: sess.UserID, SessionID: sess.ID, Scopes: sess.Scopes}, nil
}

// hubCluster adapts *hub.Hub to auth.Cluster (NodeInfo is declared on both
// sides, so Nodes converts).
type hubCluster struct{ h *hub.Hub }

func (c hubCluster) Acknowledge(ctx context.Context, requestID string) (func(time.Duration) (int, int), error) {
	return c.h.Acknowledge(ctx, requestID)
}

func (c hubCluster) Nodes(ctx context.Context) ([]auth.NodeInfo, error) {
	nodes, err := c.h.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]auth.NodeInfo, len(nodes))
	for i, n := range nodes {
		out[i] = auth.NodeInfo{ID: n.ID, Connections: n.Connections, StartedAt: n.StartedAt}
	}
	return out, nil
}
