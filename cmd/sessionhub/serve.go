package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// shutdownBudget is how long SIGTERM may take before the process exits:
// API.md says 10 s; half a second is left for closing the stores.
const shutdownBudget = 9500 * time.Millisecond

// serve runs `sessionhub serve`.
func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := parseServeConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	// One access line per request goes through lw, off the request path.
	lw := newLogWriter(stderr)
	defer lw.Close()
	log := newLogger(cfg, lw)
	// The first line says what the node runs on: in memory, nothing
	// survives a restart, and a developer must see that before anything.
	if cfg.Memory() {
		log.Warn("running single-node in-memory mode: data is lost on restart (set REDIS_URL and DATABASE_URL for production)",
			"mode", "memory")
	} else {
		log.Info("running on Redis + Postgres", "mode", "redis+postgres", "redis_prefix", cfg.RedisPrefix)
	}

	reg := newRegistry()
	b, err := openBackends(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer b.close()
	a, err := wire(cfg, b, log, reg)
	if err != nil {
		return err
	}
	return a.serve(ctx)
}

// serve listens on both addresses, runs the background loops and, when ctx
// ends, shuts down in API.md's order: readiness fails, sockets drain,
// in-flight HTTP finishes.
func (a *app) serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on SESSIONHUB_ADDR: %w", err)
	}
	mln, err := net.Listen("tcp", a.cfg.MetricsAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen on SESSIONHUB_METRICS_ADDR: %w", err)
	}
	errorLog := slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)
	public := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// Idle keep-alive connections are closed after 2 minutes, well past
		// a browser's reuse window.
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    errorLog,
	}
	private := &http.Server{
		Handler:           metricsHandler(a.reg),
		ReadHeaderTimeout: readHeaderTimeout,
		ErrorLog:          errorLog,
	}

	// The background loops outlive ctx: they stop after the drain.
	runCtx, stopRunners := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRunners()
	var runners sync.WaitGroup
	for _, r := range a.runners {
		runners.Go(func() {
			if err := r.run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				a.log.Error("background loop stopped", "loop", r.name, "err", err)
			}
		})
	}

	errc := make(chan error, 2)
	go func() { errc <- listenErr(public.Serve(ln)) }()
	go func() { errc <- listenErr(private.Serve(mln)) }()
	a.log.Info("listening", "addr", ln.Addr().String(), "metrics_addr", mln.Addr().String())

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		a.log.Error("listener failed", "err", serveErr)
	}

	start := time.Now()
	sctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), start.Add(shutdownBudget))
	defer cancel()
	a.draining.Store(true)
	a.log.Info("shutting down: readiness fails, sockets drain", "drain", a.cfg.Drain.String())
	for _, d := range a.drainers {
		if err := d(sctx); err != nil {
			a.log.Warn("drain incomplete", "err", err)
		}
	}
	if err := public.Shutdown(sctx); err != nil {
		a.log.Warn("in-flight requests cut at the shutdown deadline", "err", err)
		public.Close()
	}
	if err := private.Shutdown(sctx); err != nil {
		private.Close()
	}
	stopRunners()
	runners.Wait()
	a.log.Info("stopped", "shutdown_ms", time.Since(start).Milliseconds())
	return serveErr
}

// listenErr drops the error every Serve returns after Shutdown.
func listenErr(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
