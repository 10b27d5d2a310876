package auth

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/sessionhub/sessionhub/sessions"
)

// minute is the period of API.md's per-minute limits.
const minute = time.Minute

// handleGetSession serves GET /session: who am I, with the CSRF token the
// page needs for its mutations. Authentication already slid the expiry.
// The user's view comes from this node's cache when it has a fresh entry
// (it never changes; see userCache), so the route costs Redis alone.
func (s *Server) handleGetSession(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	view, fresh, cached := s.seen.get(c.sess.UserID)
	if !fresh {
		u, err := s.users.UserByID(r.Context(), c.sess.UserID)
		switch {
		case err == nil:
			s.seen.put(u)
			view = viewUser(u)
		case errors.Is(err, ErrUserNotFound):
			s.writeError(w, r, errUnauthenticated) // the account is gone: the session is worthless
			return
		case unavailable(err):
			// Postgres is down but the session is valid (Redis said so):
			// answer from what this node last saw, or with the id alone,
			// rather than failing every page load during the outage.
			s.log.Warn("auth: GET /session answered without Postgres", "user_id", c.sess.UserID)
			if !cached {
				view = userView{ID: c.sess.UserID}
			}
		default:
			s.writeError(w, r, err)
			return
		}
	}
	if err := writeAccount(w, http.StatusOK, &accountResponse{User: view, Session: viewSession(c.sess, c.sess.ID), CSRFToken: c.sess.CSRFToken}); err != nil {
		s.writeError(w, r, err) // logged; a 500 rather than a 200 with no body
	}
}

// handleListSessions serves GET /sessions: the caller's live sessions
// ("my devices"), newest first.
func (s *Server) handleListSessions(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	list, err := s.listSessions(r.Context(), c.sess.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sessionsResponse{Sessions: viewSessions(list, c.sess.ID)})
}

func (s *Server) listSessions(ctx context.Context, userID string) ([]*sessions.Session, error) {
	list, err := s.store.List(ctx, userID)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, func(a, b *sessions.Session) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return list, nil
}

// handleDeleteSession serves DELETE /sessions/{id}: revoke one of the
// caller's own sessions. Another user's id answers exactly like an unknown
// one (404), so ids cannot be probed (SECURITY.md 14).
func (s *Server) handleDeleteSession(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	id := chi.URLParam(r, "id")
	target, err := s.store.Lookup(r.Context(), id)
	if errors.Is(err, sessions.ErrNotFound) || (err == nil && target.UserID != c.sess.UserID) {
		s.writeError(w, r, errNotFound)
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.revoke(r.Context(), id, sessions.ReasonRevoked, "", s.originOf(r)); err != nil {
		if errors.Is(err, sessions.ErrNotFound) {
			err = errNotFound
		}
		s.writeError(w, r, err)
		return
	}
	if id == c.sess.ID && c.viaCookie() {
		s.clearCookie(w)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// handleLogout serves POST /auth/logout: end the calling session.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	err := s.revoke(r.Context(), c.sess.ID, sessions.ReasonLogout, "", s.originOf(r))
	if err != nil && !errors.Is(err, sessions.ErrNotFound) {
		s.writeError(w, r, err)
		return
	}
	s.clearCookie(w)
	w.WriteHeader(http.StatusNoContent)
}

// handleLogoutAll serves POST /auth/logout-all: end every session of the
// user, the caller's included; the hubs close every socket of the user.
func (s *Server) handleLogoutAll(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if _, err := s.revokeUser(r.Context(), c.sess.UserID, sessions.ReasonLogoutAll, "", "", s.originOf(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.clearCookie(w)
	w.WriteHeader(http.StatusNoContent)
}

// handleSessionToken serves POST /session/token: trade a live session
// (cookie + CSRF, or a service session's Authorization header) for a
// 5-minute JWT carrying the session's scopes. A JWT never authenticates
// this route, so a token cannot renew itself past its session.
func (s *Server) handleSessionToken(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	wait, err := s.limits.allow(r.Context(), "tok:"+c.sess.ID, s.cfg.TokensPerSession, minute)
	if err == nil && wait > 0 {
		s.metrics.rateLimited.WithLabelValues("token").Inc()
		s.writeRateLimited(w, r, wait)
		return
	}
	tok, ttl, err := s.tokens.Mint(c.sess)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.metrics.tokensIssued.WithLabelValues("access").Inc()
	writeJSON(w, http.StatusOK, tokenResponse{Token: tok, TokenType: "Bearer", ExpiresIn: secondsOf(ttl)})
}

// jwksMaxAge lets clients cache the key set briefly; a rotated-in key is
// published well before it signs (the previous key keeps verifying).
const jwksMaxAge = "public, max-age=300"

// handleJWKS serves GET /.well-known/jwks.json.
func (s *Server) handleJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", jwksMaxAge)
	_, _ = w.Write(s.tokens.Keys().PublicJWKS())
}

// revoke ends one session and records it. requestID asks the hubs for acks.
func (s *Server) revoke(ctx context.Context, id string, reason sessions.Reason, requestID string, o origin) error {
	_, err := s.revokeSession(ctx, id, reason, requestID, o)
	return err
}

// revokeSession is revoke returning the revoked session.
func (s *Server) revokeSession(ctx context.Context, id string, reason sessions.Reason, requestID string, o origin) (*sessions.Session, error) {
	sess, err := s.store.Revoke(ctx, id, sessions.Revocation{Reason: reason, RequestID: requestID})
	if err != nil {
		return nil, err
	}
	s.metrics.sessionsRevoked.WithLabelValues(string(reason)).Inc()
	s.audit(ctx, AuditEvent{Type: EventSessionRevoked, UserID: sess.UserID, SessionID: id, IP: o.ip, UserAgent: o.ua,
		Detail: map[string]any{"reason": string(reason), "kind": string(sess.Kind)}})
	return sess, nil
}

// revokeUser ends every session of userID but except, recording each.
func (s *Server) revokeUser(ctx context.Context, userID string, reason sessions.Reason, except, requestID string, o origin) ([]string, error) {
	ids, err := s.store.RevokeUser(ctx, userID, sessions.Revocation{Reason: reason, Except: except, RequestID: requestID})
	if err != nil {
		return nil, err
	}
	s.metrics.sessionsRevoked.WithLabelValues(string(reason)).Add(float64(len(ids)))
	events := make([]AuditEvent, len(ids))
	for i, id := range ids {
		events[i] = AuditEvent{Type: EventSessionRevoked, UserID: userID, SessionID: id, IP: o.ip, UserAgent: o.ua,
			Detail: map[string]any{"reason": string(reason)}}
	}
	s.auditAll(ctx, events)
	return ids, nil
}
