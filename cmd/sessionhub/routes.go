package main

import (
	"net/http"
	"sync/atomic"

	"github.com/go-chi/chi/v5"
)

// routes are the handlers the public router mounts.
type routes struct {
	health   healther
	draining *atomic.Bool
}

// addRoutes lists every public route in one place.
func addRoutes(r chi.Router, d routes) {
	r.Get("/healthz", handleHealthz())
	r.Head("/healthz", handleHealthz())
	r.Get("/readyz", handleReadyz(d.health, d.draining))

	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, "not_found", "no such route")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this route")
	})
}
