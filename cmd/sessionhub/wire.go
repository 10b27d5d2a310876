package main

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
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

// wire builds the packages on top of the backends and the public router.
func wire(cfg *Config, b *backends, log *slog.Logger, reg *prometheus.Registry) (*app, error) {
	a := &app{cfg: cfg, log: log, reg: reg}
	a.runners = append(a.runners, runner{"sessions", b.store.Run})

	hm, err := newHTTPMetrics(reg)
	if err != nil {
		return nil, err
	}
	r := chi.NewRouter()
	r.Use(requestID, hm.observe(log), limitBody)
	addRoutes(r, routes{
		health:   b.store,
		draining: &a.draining,
	})
	a.handler = r
	return a, nil
}
