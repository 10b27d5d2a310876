package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/sessionhub/sessionhub/sessions"
)

// Admin page sizes (API.md): 50 by default, at most 500.
const (
	defaultPageSize = 50
	maxPageSize     = 500
	maxQueryChars   = 200
)

// pageLimit parses ?limit=: absent → 50; 1..500 else 400.
func pageLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return defaultPageSize, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, errBadRequest("limit must be a positive integer")
	}
	return min(n, maxPageSize), nil
}

// handleAdminUsers serves GET /admin/users?q=&limit=&cursor=. The cursor is
// opaque (base64url of the last email of the page); next_cursor is null on
// the last page.
func (s *Server) handleAdminUsers(w http.ResponseWriter, r *http.Request) {
	limit, err := pageLimit(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query().Get("q")
	if utf8.RuneCountInString(q) > maxQueryChars || !utf8.ValidString(q) {
		s.writeError(w, r, errBadRequest("q is too long"))
		return
	}
	after := ""
	if c := r.URL.Query().Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || len(b) > maxEmailBytes || !utf8.Valid(b) {
			s.writeError(w, r, errBadRequest("bad cursor"))
			return
		}
		after = string(b)
	}
	// One extra row says whether another page exists.
	list, err := s.users.SearchUsers(r.Context(), q, after, limit+1)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	page := usersPage{Users: make([]userView, 0, min(len(list), limit))}
	for i, u := range list {
		if i == limit {
			c := base64.RawURLEncoding.EncodeToString([]byte(list[limit-1].Email))
			page.NextCursor = &c
			break
		}
		page.Users = append(page.Users, viewUser(u))
	}
	writeJSON(w, http.StatusOK, page)
}

// handleAdminUserSessions serves GET /admin/users/{id}/sessions.
func (s *Server) handleAdminUserSessions(w http.ResponseWriter, r *http.Request) {
	u, err := s.users.UserByID(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := s.listSessions(r.Context(), u.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sessionsResponse{Sessions: viewSessions(list, callerOf(r).sess.ID)})
}

// acknowledged runs revoke with a fresh request id, collecting the hubs'
// acks for up to AckTimeout. Without a Cluster the counts are 0.
func (s *Server) acknowledged(ctx context.Context, revoke func(requestID string) error) (closed, acked int, err error) {
	if s.cluster == nil {
		return 0, 0, revoke("")
	}
	reqID := sessions.RandomString(16)
	wait, err := s.cluster.Acknowledge(ctx, reqID)
	if err != nil {
		// The revocation matters more than its count: go on without acks.
		s.log.Warn("auth: cannot collect revocation acks", "err", err)
		return 0, 0, revoke(reqID)
	}
	if err := revoke(reqID); err != nil {
		wait(0) // release the collector
		return 0, 0, err
	}
	closed, acked = wait(s.cfg.AckTimeout)
	return closed, acked, nil
}

// handleAdminLogoutAll serves POST /admin/users/{id}/logout-all.
func (s *Server) handleAdminLogoutAll(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := callerOf(r)
	u, err := s.users.UserByID(ctx, chi.URLParam(r, "id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	o := s.originOf(r)
	var ids []string
	closed, acked, err := s.acknowledged(ctx, func(reqID string) error {
		var err error
		ids, err = s.revokeUser(ctx, u.ID, sessions.ReasonAdmin, "", reqID, o)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.audit(ctx, AuditEvent{Type: EventAdminAction, UserID: c.sess.UserID, SessionID: c.sess.ID, IP: o.ip, UserAgent: o.ua,
		Detail: map[string]any{"action": "logout_all", "target_user_id": u.ID, "sessions_revoked": len(ids)}})
	writeJSON(w, http.StatusOK, logoutAllResponse{SessionsRevoked: len(ids), SocketsClosed: closed, NodesAcked: acked})
}

// handleAdminDeleteSession serves DELETE /admin/sessions/{id}.
func (s *Server) handleAdminDeleteSession(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := callerOf(r)
	id := chi.URLParam(r, "id")
	if _, err := s.store.Lookup(ctx, id); err != nil {
		if errors.Is(err, sessions.ErrNotFound) {
			err = errNotFound
		}
		s.writeError(w, r, err)
		return
	}
	o := s.originOf(r)
	closed, acked, err := s.acknowledged(ctx, func(reqID string) error {
		return s.revoke(ctx, id, sessions.ReasonAdmin, reqID, o)
	})
	if errors.Is(err, sessions.ErrNotFound) {
		err = errNotFound
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.audit(ctx, AuditEvent{Type: EventAdminAction, UserID: c.sess.UserID, SessionID: c.sess.ID, IP: o.ip, UserAgent: o.ua,
		Detail: map[string]any{"action": "revoke_session", "target_session_id": id}})
	writeJSON(w, http.StatusOK, revokeResponse{SocketsClosed: closed, NodesAcked: acked})
}

// handleAdminStats serves GET /admin/stats.
func (s *Server) handleAdminStats(w http.ResponseWriter, r *http.Request) {
	out := statsResponse{Nodes: []nodeView{}}
	if s.cluster != nil {
		nodes, err := s.cluster.Nodes(r.Context())
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		for _, n := range nodes {
			out.Nodes = append(out.Nodes, nodeView{ID: n.ID, Connections: n.Connections, StartedAt: n.StartedAt.UTC()})
			out.Connections += n.Connections
		}
	}
	n, err := s.store.CountActive(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out.SessionsActive = n
	writeJSON(w, http.StatusOK, out)
}

type adminCreateUserRequest struct {
	Email    string   `json:"email"`
	Name     string   `json:"name"`
	Password string   `json:"password"`
	Scopes   []string `json:"scopes"`
}

// handleAdminCreateUser serves POST /admin/users: how a back end creates
// users without touching the database. Validation and errors are
// signup's; the password is optional.
func (s *Server) handleAdminCreateUser(w http.ResponseWriter, r *http.Request) {
	var req adminCreateUserRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	c := callerOf(r)
	u, err := s.createUser(ctx, req.Email, req.Name, req.Password, req.Scopes, false)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	o := s.originOf(r)
	s.audit(ctx, AuditEvent{Type: EventAdminAction, UserID: c.sess.UserID, SessionID: c.sess.ID, IP: o.ip, UserAgent: o.ua,
		Detail: map[string]any{"action": "create_user", "target_user_id": u.ID, "scopes": u.Scopes}})
	writeJSON(w, http.StatusCreated, userResponse{User: viewUser(u)})
}
