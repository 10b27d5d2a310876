package auth

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/sessionhub/sessionhub/sessions"
)

// caller is the authenticated session of a request.
type caller struct {
	sess *sessions.Session
	// token is the raw cookie value, kept to re-send the cookie; empty
	// for service sessions (Authorization: Session), which carry no cookie.
	token string
}

func (c *caller) viaCookie() bool { return c.token != "" }

type callerKey struct{}

func callerOf(r *http.Request) *caller {
	c, _ := r.Context().Value(callerKey{}).(*caller)
	return c
}

// maxAuthHeader bounds the Authorization value parsed as a session token.
const maxAuthHeader = 256

// authenticate finds the request's session. Only two carriers exist
// (SECURITY.md 5): the cookie, for browser sessions, and "Authorization:
// Session <id>.<secret>", for service sessions. A bearer JWT is not a
// session and is ignored here, as are query strings and form fields.
func (s *Server) authenticate(r *http.Request) (*caller, error) {
	want, raw := sessions.KindBrowser, cookieToken(r)
	fromHeader := false
	if scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Session") {
		if len(cred) > maxAuthHeader {
			s.metrics.invalidSessions.Inc()
			return nil, errUnauthenticated
		}
		want, raw, fromHeader = sessions.KindService, strings.TrimSpace(cred), true
	}
	if raw == "" {
		return nil, errUnauthenticated
	}
	sess, err := s.store.Authenticate(r.Context(), raw)
	if err != nil {
		if errors.Is(err, sessions.ErrNotFound) || errors.Is(err, sessions.ErrInvalidToken) {
			s.metrics.invalidSessions.Inc()
			return nil, errUnauthenticated
		}
		return nil, err
	}
	if sess.Kind != want {
		// A service token in a cookie, or a browser cookie replayed as a
		// header: each carrier has its own CSRF story, so never mix them.
		s.metrics.invalidSessions.Inc()
		return nil, errUnauthenticated
	}
	c := &caller{sess: sess}
	if !fromHeader {
		c.token = raw
	}
	return c, nil
}

// withSession requires a session for a safe (GET) route and re-sends the
// cookie with a fresh Max-Age.
func (s *Server) withSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if c.viaCookie() {
			s.writeCookie(w, c.token, c.sess)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

// withMutation guards a state-changing route that needs a session, in
// API.md's order: no valid session → 401; then a cross-origin browser
// request → 403 origin (http.CrossOriginProtection with the configured
// origins); then, for cookie sessions only, the per-session X-CSRF-Token
// compared in constant time → 403 csrf. The Go check alone lets requests
// with neither Sec-Fetch-Site nor Origin through, hence the token.
func (s *Server) withMutation(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := s.cop.Check(r); err != nil {
			s.writeError(w, r, errOrigin)
			return
		}
		if c.viaCookie() && !c.sess.MatchCSRF(r.Header.Get("X-CSRF-Token")) {
			s.writeError(w, r, errCSRF)
			return
		}
		if c.viaCookie() {
			s.writeCookie(w, c.token, c.sess)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

// withOrigin guards the session-less mutations (signup, login, refresh):
// a cross-site browser post is refused, which stops login CSRF (an
// attacker logging the victim into the attacker's account).
func (s *Server) withOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.cop.Check(r); err != nil {
			s.writeError(w, r, errOrigin)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// withAdmin requires the admin scope on the caller's session (it runs
// after withSession or withMutation).
func (s *Server) withAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := callerOf(r); c == nil || !slices.Contains(c.sess.Scopes, "admin") {
			s.writeError(w, r, errForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// CookieSession authenticates r by its session cookie alone (browser
// sessions), sliding the expiry, and re-sends the cookie on w with a fresh
// Max-Age as every cookie-authenticated request does (API.md, Cookies). It
// is what cmd adapts for the hub's cookie-only WebSocket handshake, whose
// 101 carries the cookie; the hub checks Origin itself.
func (s *Server) CookieSession(w http.ResponseWriter, r *http.Request) (*sessions.Session, error) {
	raw := cookieToken(r)
	if raw == "" {
		return nil, errUnauthenticated
	}
	sess, err := s.store.Authenticate(r.Context(), raw)
	if err != nil {
		if errors.Is(err, sessions.ErrNotFound) || errors.Is(err, sessions.ErrInvalidToken) {
			s.metrics.invalidSessions.Inc()
			return nil, sessions.ErrNotFound
		}
		return nil, err
	}
	if sess.Kind != sessions.KindBrowser {
		s.metrics.invalidSessions.Inc()
		return nil, sessions.ErrNotFound
	}
	s.writeCookie(w, raw, sess)
	return sess, nil
}
