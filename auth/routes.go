package auth

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// Routes registers every auth, session and admin route of API.md on r.
// Each route names its guard: withOrigin (session-less mutations: the
// cross-origin check), withSession (safe methods: a session), withMutation
// (a session, then the origin check, then CSRF for cookies) and withAdmin
// (the admin scope). Other admin handlers (events, reports) are added with
// AdminGET so they share the same guards.
func (s *Server) Routes(r chi.Router) {
	r.With(s.withOrigin).Post("/auth/signup", s.handleSignup)
	r.With(s.withOrigin).Post("/auth/login", s.handleLogin)
	r.With(s.withOrigin).Post("/auth/refresh", s.handleRefresh)
	r.With(s.withMutation).Post("/auth/password", s.handlePassword)
	r.With(s.withMutation).Post("/auth/logout", s.handleLogout)
	r.With(s.withMutation).Post("/auth/logout-all", s.handleLogoutAll)

	r.With(s.withSession).Get("/session", s.handleGetSession)
	r.With(s.withSession).Get("/sessions", s.handleListSessions)
	r.With(s.withMutation).Delete("/sessions/{id}", s.handleDeleteSession)
	r.With(s.withMutation).Post("/session/token", s.handleSessionToken)
	r.Get("/.well-known/jwks.json", s.handleJWKS)

	// Google login (google.go); 404 when it is not configured.
	r.With(s.withGoogle).Get("/auth/google/login", s.handleGoogleLogin)
	r.With(s.withGoogle).Get("/auth/google/callback", s.handleGoogleCallback)
	r.With(s.withGoogle, s.withSession).Get("/auth/google/link", s.handleGoogleLink)

	s.AdminGET(r, "/admin/users", s.handleAdminUsers)
	s.AdminGET(r, "/admin/users/{id}/sessions", s.handleAdminUserSessions)
	s.AdminGET(r, "/admin/stats", s.handleAdminStats)
	s.AdminMutation(r, http.MethodPost, "/admin/users", s.handleAdminCreateUser)
	s.AdminMutation(r, http.MethodPost, "/admin/users/{id}/logout-all", s.handleAdminLogoutAll)
	s.AdminMutation(r, http.MethodDelete, "/admin/sessions/{id}", s.handleAdminDeleteSession)
	// Audit log and reports: /admin/events, /admin/reports/* (report_http.go).
	s.adminReportRoutes(r)
}

// AdminGET registers a read-only admin route: a session (cookie or
// service) with the admin scope; a bearer JWT gets 401.
func (s *Server) AdminGET(r chi.Router, pattern string, h http.HandlerFunc) {
	r.With(s.withSession, s.withAdmin).Get(pattern, h)
}

// AdminMutation registers a state-changing admin route: a session with the
// admin scope, the origin check and, for cookies, CSRF.
func (s *Server) AdminMutation(r chi.Router, method, pattern string, h http.HandlerFunc) {
	r.With(s.withMutation, s.withAdmin).Method(method, pattern, h)
}
