package main

import (
	"net/http"
	"net/http/pprof"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
