package main

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"time"
)

// healther is what readiness asks of the session store.
type healther interface {
	Health(ctx context.Context) (hot, durable error)
}

// readyTimeout bounds one readiness check below the usual 5 s probe timeout
// of load balancers; the store's own timeouts (1 s Redis, 3 s Postgres) fit.
const readyTimeout = 4 * time.Second

// handleHealthz serves GET /healthz: 200 whenever the process serves HTTP.
// It checks nothing else, so a store outage never restarts the process.
func handleHealthz() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

// readiness is the body of /readyz.
type readiness struct {
	Status   string `json:"status"`   // ok, degraded, unavailable, draining
	Redis    string `json:"redis"`    // ok, down
	Postgres string `json:"postgres"` // ok, down
}

// handleReadyz serves GET /readyz: ok or degraded (one store down, the node
// still serves) answer 200, so one shared-store outage does not take every
// node out of the load balancer; unavailable (both down) and draining
// (shutting down) answer 503.
func handleReadyz(store healther, draining *atomic.Bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		hot, durable := store.Health(ctx)
		rd := readiness{Redis: upDown(hot), Postgres: upDown(durable)}
		code := http.StatusOK
		switch {
		case draining.Load():
			rd.Status, code = "draining", http.StatusServiceUnavailable
		case hot != nil && durable != nil:
			rd.Status, code = "unavailable", http.StatusServiceUnavailable
		case hot != nil || durable != nil:
			rd.Status = "degraded"
		default:
			rd.Status = "ok"
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, code, rd)
	}
}

func upDown(err error) string {
	if err != nil {
		return "down"
	}
	return "ok"
}

// writeJSON writes v as the JSON body with the status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
