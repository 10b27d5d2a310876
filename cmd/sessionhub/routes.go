package main

import (
	"net/http"
	"sync/atomic"

	"github.com/go-chi/chi/v5"

	"github.com/sessionhub/sessionhub/auth"
	"github.com/sessionhub/sessionhub/hub"
)

// routes are the handlers the public router mounts.
type routes struct {
	health   healther
	draining *atomic.Bool
	auth     *auth.Server
	hub      *hub.Hub
	web      http.Handler // the catch-all: pages, assets, 404
}

// addRoutes lists every public route in one place. The auth package
// registers its own (API.md: auth, session and admin routes).
func addRoutes(r chi.Router, d routes) {
	r.Get("/healthz", handleHealthz())
	r.Head("/healthz", handleHealthz())
	r.Get("/readyz", handleReadyz(d.health, d.draining))

	d.auth.Routes(r)
	r.Get("/ws", d.hub.ServeWS)
	r.Post("/api/publish", d.hub.HandlePublish)

	r.Handle("/*", d.web)
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this route")
	})
}
