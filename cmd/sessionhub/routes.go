package main

import (
	"net/http"
	"strings"
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
func addRoutes(r *chi.Mux, d routes) {
	r.Get("/healthz", handleHealthz())
	r.Head("/healthz", handleHealthz())
	r.Get("/readyz", handleReadyz(d.health, d.draining))

	d.auth.Routes(r)
	r.Get("/ws", d.hub.ServeWS)
	r.Post("/api/publish", d.hub.HandlePublish)

	r.Handle("/*", catchAll(r, d.web))
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this route")
	})
}

// routeMethods are the methods API routes use.
var routeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// catchAll serves the pages, except that a path an API route serves with
// other methods gets 405 (chi falls through to the catch-all instead, which
// would answer 404 for PUT /auth/login).
func catchAll(mux *chi.Mux, pages http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range routeMethods {
			if p := mux.Find(chi.NewRouteContext(), m, r.URL.Path); p != "" && p != "/*" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this route")
			return
		}
		pages.ServeHTTP(w, r)
	}
}
