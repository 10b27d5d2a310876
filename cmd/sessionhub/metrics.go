package main

import (
	"context"
	"net/http"
	"net/http/pprof"
	"runtime"
	"runtime/debug"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sessionhub/sessionhub/sessions"
)

// newRegistry returns a fresh registry (no global one, so several servers
// can live in one test process) with the Go and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// metricsHandler serves the private listener (SESSIONHUB_METRICS_ADDR):
// /metrics, the pprof profiles and /debug/gc. None of it is on the public
// port: profiles and metrics tell an attacker too much.
func metricsHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/gc", handleGC)
	return mux
}

// handleGC serves /debug/gc: it runs a full collection, returns freed
// memory to the OS and reports the heap, so that a load tool measures the
// memory a number of sockets really holds rather than garbage.
func handleGC(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return
	}
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	writeJSON(w, http.StatusOK, map[string]uint64{
		"heap_alloc_bytes": ms.HeapAlloc,
		"heap_inuse_bytes": ms.HeapInuse,
		"heap_objects":     ms.HeapObjects,
		"sys_bytes":        ms.Sys,
		"goroutines":       uint64(runtime.NumGoroutine()),
	})
}

// storeProbe is what the scrape-time gauges ask of the session store.
type storeProbe interface {
	healther
	CountActive(ctx context.Context) (int64, error)
	Stats() sessions.Stats
}

// storeCollector computes, at scrape time, the gauges the alert rules and
// the dashboard read: sessionhub_ready (what /readyz would say),
// sessionhub_store_up{store} and sessionhub_sessions_active, plus the
// store's own counters (restores after a Redis loss, fallbacks to Postgres).
// A scrape costs
// one Redis and one Postgres ping plus one ZCOUNT, every 15 s or so: cheaper
// and never staler than a polling loop.
type storeCollector struct {
	store    storeProbe
	draining *atomic.Bool
	ready    *prometheus.Desc
	storeUp  *prometheus.Desc
	active   *prometheus.Desc
	restored *prometheus.Desc
	hotFails *prometheus.Desc
	durable  *prometheus.Desc
}

// registerStoreCollector registers the scrape-time store gauges on reg.
func registerStoreCollector(reg prometheus.Registerer, store storeProbe, draining *atomic.Bool) error {
	return reg.Register(&storeCollector{
		store:    store,
		draining: draining,
		ready: prometheus.NewDesc("sessionhub_ready",
			"1 when /readyz answers ok or degraded (the node serves), 0 when unavailable or draining.", nil, nil),
		storeUp: prometheus.NewDesc("sessionhub_store_up",
			"1 when the store answers its health check (the redis and postgres fields of /readyz).", []string{"store"}, nil),
		active: prometheus.NewDesc("sessionhub_sessions_active",
			"Live sessions in Redis, cluster-wide: every node reports the same number (use max, not sum). Absent while Redis is down.", nil, nil),
		restored: prometheus.NewDesc("sessionhub_sessions_restored_total",
			"Sessions put back into Redis from Postgres (after Redis lost them).", nil, nil),
		hotFails: prometheus.NewDesc("sessionhub_sessions_redis_failures_total",
			"Session store calls to Redis that failed and fell back to Postgres.", nil, nil),
		durable: prometheus.NewDesc("sessionhub_sessions_postgres_reads_total",
			"Session reads that had to go to Postgres (Redis missed or was down).", nil, nil),
	})
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.ready
	ch <- c.storeUp
	ch <- c.active
	ch <- c.restored
	ch <- c.hotFails
	ch <- c.durable
}

// Collect runs the same health check as /readyz (and its readyTimeout
// bound, under Prometheus's default 10 s scrape timeout).
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	st := c.store.Stats()
	ch <- prometheus.MustNewConstMetric(c.restored, prometheus.CounterValue, float64(st.Restored))
	ch <- prometheus.MustNewConstMetric(c.hotFails, prometheus.CounterValue, float64(st.HotFailures))
	ch <- prometheus.MustNewConstMetric(c.durable, prometheus.CounterValue, float64(st.DurableQueries))
	hot, durable := c.store.Health(ctx)
	// The rule of handleReadyz: serving unless draining or both stores down.
	ready := !c.draining.Load() && (hot == nil || durable == nil)
	ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, gaugeBool(ready))
	ch <- prometheus.MustNewConstMetric(c.storeUp, prometheus.GaugeValue, gaugeBool(hot == nil), "redis")
	ch <- prometheus.MustNewConstMetric(c.storeUp, prometheus.GaugeValue, gaugeBool(durable == nil), "postgres")
	if hot != nil {
		return
	}
	if n, err := c.store.CountActive(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(n))
	}
}

func gaugeBool(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
