package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionhub/sessionhub/auth"
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
// router.
func wire(cfg *Config, b *backends, log *slog.Logger, reg *prometheus.Registry) (*app, error) {
	a := &app{cfg: cfg, log: log, reg: reg}
	a.runners = append(a.runners, runner{"sessions", b.store.Run})

	authSrv, err := newAuth(cfg, b, log, reg, nil)
	if err != nil {
		return nil, err
	}

	hm, err := newHTTPMetrics(reg)
	if err != nil {
		return nil, err
	}
	r := chi.NewRouter()
	r.Use(requestID, hm.observe(log), limitBody)
	addRoutes(r, routes{
		health:   b.store,
		draining: &a.draining,
		auth:     authSrv,
		web:      web.Handler(web.Config{GoogleEnabled: cfg.GoogleEnabled()}),
	})
	a.handler = r
	return a, nil
}

// newAuth builds the auth surface: the signing keys, the JWT minter, the
// refresh-token rotator and the server itself. The command-line tools use
// it too (with a nil registerer), so that they have the HTTP routes'
// effects and audit trail.
func newAuth(cfg *Config, b *backends, log *slog.Logger, reg prometheus.Registerer, cluster auth.Cluster) (*auth.Server, error) {
	keys, err := loadKeys(cfg, log)
	if err != nil {
		return nil, err
	}
	tokens, err := auth.NewTokens(auth.TokenConfig{Issuer: cfg.PublicURL.String(), TTL: cfg.TokenTTL}, keys)
	if err != nil {
		return nil, err
	}
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
