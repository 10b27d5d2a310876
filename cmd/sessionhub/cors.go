package main

import (
	"net/http"
	"slices"
	"strings"
)

// CORS: SESSIONHUB_ALLOWED_ORIGINS are the origins "allowed for
// cross-origin requests" (API.md). A page on one of them calls the API with
// fetch(…, {credentials: "include"}) and an X-CSRF-Token header, which
// browsers send only after a preflight, and whose answer they hand to the
// page only with Access-Control-Allow-Origin naming it and
// Access-Control-Allow-Credentials. This is what opens the API to those
// pages; what stops other sites stays where it was: the origin check and
// the CSRF token of each mutation (auth), the handshake's Origin check (hub).

// corsMaxAge lets a browser reuse a preflight for 10 minutes (Chromium's
// own cap is 2 hours; a shorter cache makes an allowlist change bite soon).
const corsMaxAge = "600"

// corsAllowMethods and corsAllowHeaders are what API routes use: the
// mutations' methods, and the headers of API.md (CSRF token, mobile login,
// service sessions and bearer tokens) besides Content-Type.
const (
	corsAllowMethods = "GET, POST, PUT, PATCH, DELETE"
	corsAllowHeaders = "Authorization, Content-Type, X-CSRF-Token, X-Client, X-Request-Id"
	// corsExposeHeaders are the response headers a page needs beyond the
	// CORS-safelisted ones: when to retry, the request id to report, the
	// events' CSV cursor.
	corsExposeHeaders = "Retry-After, X-Request-Id, X-Next-Cursor, Content-Disposition"
)

// withCORS answers preflights and marks the responses of requests from the
// allowed origins as readable by them, with credentials. A preflight from
// any other origin is refused with 403 origin; their other requests pass
// through untouched (no Access-Control-Allow-Origin, so the browser keeps
// the answer from the page) to the checks that refuse them.
func withCORS(allowed []string) func(http.Handler) http.Handler {
	allowed = slices.Clone(allowed)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			// The answer depends on Origin: shared caches must key on it.
			h.Add("Vary", "Origin")
			origin := r.Header.Get("Origin")
			preflight := r.Method == http.MethodOptions && origin != "" &&
				r.Header.Get("Access-Control-Request-Method") != ""
			ok := origin != "" && slices.Contains(allowed, strings.ToLower(origin))
			if ok {
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Allow-Credentials", "true")
			}
			switch {
			case preflight && ok:
				h.Add("Vary", "Access-Control-Request-Method")
				h.Add("Vary", "Access-Control-Request-Headers")
				h.Set("Access-Control-Allow-Methods", corsAllowMethods)
				h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
				h.Set("Access-Control-Max-Age", corsMaxAge)
				w.WriteHeader(http.StatusNoContent)
			case preflight:
				writeJSONError(w, http.StatusForbidden, "origin", "cross-origin request refused")
			default:
				if ok {
					h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
				}
				next.ServeHTTP(w, r)
			}
		})
	}
}
