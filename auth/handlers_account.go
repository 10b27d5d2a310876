package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sessionhub/sessionhub/sessions"
)

// maxUserAgent and maxDevice bound what is stored per session.
const (
	maxUserAgent = 512
	maxDevice    = 100
)

// origin is where a request comes from, as recorded on sessions and events.
type origin struct{ ip, ua string }

func (s *Server) originOf(r *http.Request) origin {
	ip := ""
	if a := s.ips.of(r); a.IsValid() {
		ip = a.String()
	}
	return origin{ip: ip, ua: truncate(r.UserAgent(), maxUserAgent)}
}

func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// limitIP spends one login/signup attempt of the client's IP budget and
// answers 429 when it is spent. It reports whether the request may go on.
func (s *Server) limitIP(w http.ResponseWriter, r *http.Request) bool {
	return s.spendIP(w, r, ipKey(s.ips.of(r)))
}

// limitRefreshIP is limitIP for /auth/refresh: a budget of the same size
// in a bucket of its own.
func (s *Server) limitRefreshIP(w http.ResponseWriter, r *http.Request) bool {
	return s.spendIP(w, r, "refresh:"+ipKey(s.ips.of(r)))
}

func (s *Server) spendIP(w http.ResponseWriter, r *http.Request, key string) bool {
	wait, err := s.limits.allow(r.Context(), key, s.cfg.LoginsPerIP, minute)
	if err == nil && wait > 0 {
		s.metrics.rateLimited.WithLabelValues("ip").Inc()
		s.writeRateLimited(w, r, wait)
		return false
	}
	return true
}

type signupRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

// handleSignup serves POST /auth/signup: a new account and a browser
// session.
func (s *Server) handleSignup(w http.ResponseWriter, r *http.Request) {
	var req signupRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !s.limitIP(w, r) {
		return
	}
	o := s.originOf(r)
	u, err := s.createUser(r.Context(), req.Email, req.Name, req.Password, nil, true)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.audit(r.Context(), AuditEvent{Type: EventSignup, UserID: u.ID, IP: o.ip, UserAgent: o.ua,
		Detail: map[string]any{"method": "password"}})
	sess, tok, err := s.newSession(r.Context(), u, sessions.KindBrowser, "", "signup", o)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.seen.put(u)
	s.writeCookie(w, tok.String(), sess)
	writeJSON(w, http.StatusCreated, accountResponse{User: viewUser(u), Session: viewSession(sess, sess.ID), CSRFToken: sess.CSRFToken})
}

// createUser validates and stores a new user with the default scopes plus
// extra. An empty password makes an account that cannot log in with one,
// unless requirePassword.
func (s *Server) createUser(ctx context.Context, email, name, password string, extra []string, requirePassword bool) (*User, error) {
	email, err := normalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	scopes, err := cleanScopes(append(append([]string{}, s.cfg.DefaultScopes...), extra...))
	if err != nil {
		return nil, err
	}
	hash := ""
	if password != "" || requirePassword {
		if hash, err = s.hash.Hash(ctx, password); err != nil {
			return nil, err
		}
	}
	now := s.now().UTC().Truncate(time.Microsecond) // Postgres keeps microseconds
	u := &User{ID: newUserID(), Email: email, Name: name, PasswordHash: hash, Scopes: scopes, CreatedAt: now, UpdatedAt: now}
	if err := s.users.CreateUser(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

// newSession creates a session for u carrying u's scopes, counts it and
// writes its audit event. method labels the metric and the event.
func (s *Server) newSession(ctx context.Context, u *User, kind sessions.Kind, device, method string, o origin) (*sessions.Session, sessions.Token, error) {
	sess, tok, err := s.store.Create(ctx, sessions.NewSession{
		UserID: u.ID, Kind: kind, Scopes: u.Scopes, Device: device, IP: o.ip, UserAgent: o.ua,
	})
	if err != nil {
		return nil, sessions.Token{}, err
	}
	s.metrics.sessionsCreated.WithLabelValues(method).Inc()
	s.audit(ctx, AuditEvent{Type: EventSessionCreated, UserID: u.ID, SessionID: sess.ID, IP: o.ip, UserAgent: o.ua,
		Detail: map[string]any{"kind": string(kind), "method": method}})
	return sess, tok, nil
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Device   string `json:"device"`
}

// handleLogin serves POST /auth/login: a browser session and cookie, or,
// with X-Client: mobile, a refresh session with a refresh token and an
// access token. It always creates a new session (a cookie the request may
// carry is ignored, never upgraded: SECURITY.md 4).
//
// Unknown email and wrong password take the same path: one argon2id
// verification (against a dummy hash when there is no account), one
// failure recorded on the email's backoff key, one audit row, and the same
// 401 (SECURITY.md 32).
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	mobile := strings.EqualFold(r.Header.Get("X-Client"), "mobile")
	if mobile && (utf8.RuneCountInString(req.Device) > maxDevice || !utf8.ValidString(req.Device)) {
		s.writeError(w, r, errBadRequest("device must be at most 100 characters"))
		return
	}
	if !s.limitIP(w, r) {
		s.metrics.logins.WithLabelValues("password", "throttled").Inc()
		return
	}
	ctx := r.Context()
	o := s.originOf(r)
	key := accountKey(req.Email)
	if wait, err := s.limits.blocked(ctx, key); err == nil && wait > 0 {
		s.metrics.logins.WithLabelValues("password", "throttled").Inc()
		s.metrics.rateLimited.WithLabelValues("account").Inc()
		s.audit(ctx, AuditEvent{Type: EventLoginFailed, IP: o.ip, UserAgent: o.ua,
			Detail: map[string]any{"method": "password", "result": "throttled", "email": strings.ToLower(req.Email)}})
		s.writeRateLimited(w, r, wait)
		return
	}
	u, err := s.users.UserByEmail(ctx, req.Email)
	if err != nil && !errors.Is(err, ErrUserNotFound) {
		s.writeError(w, r, err)
		return
	}
	stored := ""
	if u != nil {
		stored = u.PasswordHash
	}
	ok, rehash, err := s.hash.Verify(ctx, req.Password, stored)
	if errors.Is(err, ErrUnavailable) {
		s.writeError(w, r, err)
		return
	}
	if !ok || u == nil {
		_ = s.limits.fail(ctx, key, s.backoff)
		s.metrics.logins.WithLabelValues("password", "failure").Inc()
		ev := AuditEvent{Type: EventLoginFailed, IP: o.ip, UserAgent: o.ua,
			Detail: map[string]any{"method": "password", "result": "failure", "email": strings.ToLower(req.Email)}}
		if u != nil {
			ev.UserID = u.ID
		}
		s.audit(ctx, ev)
		s.writeError(w, r, ErrInvalidCredentials)
		return
	}
	_ = s.limits.reset(ctx, key)
	if rehash {
		if h, err := s.hash.Hash(ctx, req.Password); err == nil {
			if err := s.users.SetPasswordHash(ctx, u.ID, h); err != nil {
				s.log.Warn("auth: re-hash of a weak password hash failed", "user_id", u.ID, "err", err)
			}
		}
	}
	kind, device := sessions.KindBrowser, ""
	if mobile {
		kind, device = sessions.KindRefresh, req.Device
	}
	sess, tok, err := s.newSession(ctx, u, kind, device, "password", o)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.metrics.logins.WithLabelValues("password", "success").Inc()
	s.audit(ctx, AuditEvent{Type: EventLoginSucceeded, UserID: u.ID, SessionID: sess.ID, IP: o.ip, UserAgent: o.ua,
		Detail: map[string]any{"method": "password", "result": "success", "kind": string(kind)}})
	s.seen.put(u)
	if !mobile {
		s.writeCookie(w, tok.String(), sess)
		writeJSON(w, http.StatusOK, accountResponse{User: viewUser(u), Session: viewSession(sess, sess.ID), CSRFToken: sess.CSRFToken})
		return
	}
	refresh, err := s.refresher.Issue(ctx, sess.ID)
	if err != nil {
		s.abandon(ctx, sess)
		s.writeError(w, r, err)
		return
	}
	access, ttl, err := s.tokens.Mint(sess)
	if err != nil {
		s.abandon(ctx, sess)
		s.writeError(w, r, err)
		return
	}
	s.metrics.tokensIssued.WithLabelValues("refresh").Inc()
	s.metrics.tokensIssued.WithLabelValues("access").Inc()
	writeJSON(w, http.StatusOK, mobileLoginResponse{User: viewUser(u), Session: viewSession(sess, sess.ID),
		RefreshToken: refresh, AccessToken: access, ExpiresIn: secondsOf(ttl)})
}

// abandon revokes a session whose login could not finish, so no orphan
// stays alive without a credential.
func (s *Server) abandon(ctx context.Context, sess *sessions.Session) {
	if _, err := s.store.Revoke(context.WithoutCancel(ctx), sess.ID, sessions.Revocation{Reason: sessions.ReasonRevoked}); err != nil {
		s.log.Warn("auth: could not revoke an unfinished login session", "session_id", sess.ID, "err", err)
	}
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// handleRefresh serves POST /auth/refresh: rotate the refresh token and
// mint an access token. A reuse revokes the whole device session
// (SECURITY.md 27). Attempts spend a per-IP budget of their own (the
// login budget's size, a separate bucket so refreshes and logins do not
// starve each other): every failure is an audit row, and a flood of
// garbage tokens must not become a flood of Postgres writes.
func (s *Server) handleRefresh(w http.ResponseWriter, r *http.Request) {
	var req refreshRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !s.limitRefreshIP(w, r) {
		return
	}
	ctx := r.Context()
	o := s.originOf(r)
	failed := func(reason, sid string) {
		s.metrics.logins.WithLabelValues("refresh", "failure").Inc()
		// No user id for an unknown token; for a known session the
		// auditor records its user (audit.go).
		s.audit(ctx, AuditEvent{Type: EventLoginFailed, SessionID: sid, IP: o.ip, UserAgent: o.ua,
			Detail: map[string]any{"method": "refresh", "result": "failure", "reason": reason}})
		s.writeError(w, r, errInvalidToken)
	}
	sid, next, err := s.refresher.Rotate(ctx, req.RefreshToken)
	if errors.Is(err, ErrRefreshReuse) {
		// Theft or a replay: end the device session (its sockets close),
		// then record the reuse against its user. A session already
		// revoked (a second replay, or one after a logout) is not
		// revoked again, but the reuse is still recorded with its user.
		s.metrics.logins.WithLabelValues("refresh", "failure").Inc()
		ev := AuditEvent{Type: EventRefreshReuse, SessionID: sid, IP: o.ip, UserAgent: o.ua,
			Detail: map[string]any{"method": "refresh", "result": "failure"}}
		sess, rerr := s.revokeSession(ctx, sid, sessions.ReasonRefreshReuse, "", o)
		switch {
		case rerr == nil:
			ev.UserID = sess.UserID
		case errors.Is(rerr, sessions.ErrNotFound):
			ev.Detail["already_revoked"] = true
		default:
			s.log.Error("auth: refresh reuse: revoking the device session failed", "session_id", sid, "err", rerr)
		}
		s.audit(ctx, ev)
		s.writeError(w, r, errInvalidToken)
		return
	}
	if errors.Is(err, ErrRefreshInvalid) {
		failed("invalid_token", "")
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sess, err := s.store.Lookup(ctx, sid)
	if errors.Is(err, sessions.ErrNotFound) || (err == nil && sess.Kind != sessions.KindRefresh) {
		failed("session_ended", sid)
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.store.Touch(ctx, sess)
	access, ttl, err := s.tokens.Mint(sess)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.metrics.logins.WithLabelValues("refresh", "success").Inc()
	s.metrics.tokensIssued.WithLabelValues("refresh").Inc()
	s.metrics.tokensIssued.WithLabelValues("access").Inc()
	s.audit(ctx, AuditEvent{Type: EventRefreshRotated, UserID: sess.UserID, SessionID: sid, IP: o.ip, UserAgent: o.ua,
		Detail: map[string]any{"method": "refresh"}})
	writeJSON(w, http.StatusOK, refreshResponse{RefreshToken: next, AccessToken: access, ExpiresIn: secondsOf(ttl)})
}

type passwordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// handlePassword serves POST /auth/password: verify the current password,
// store the new one, and revoke every other session of the user
// (SECURITY.md 16). The calling session stays.
func (s *Server) handlePassword(w http.ResponseWriter, r *http.Request) {
	var req passwordRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := checkPassword(req.NewPassword); err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	c := callerOf(r)
	o := s.originOf(r)
	u, err := s.users.UserByID(ctx, c.sess.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The account backoff guards this oracle too: a stolen session must
	// not become a way to brute-force the password.
	key := accountKey(u.Email)
	if wait, err := s.limits.blocked(ctx, key); err == nil && wait > 0 {
		s.metrics.rateLimited.WithLabelValues("account").Inc()
		s.writeRateLimited(w, r, wait)
		return
	}
	ok, _, err := s.hash.Verify(ctx, req.CurrentPassword, u.PasswordHash)
	if errors.Is(err, ErrUnavailable) {
		s.writeError(w, r, err)
		return
	}
	if !ok {
		_ = s.limits.fail(ctx, key, s.backoff)
		s.writeError(w, r, ErrInvalidCredentials)
		return
	}
	h, err := s.hash.Hash(ctx, req.NewPassword)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.users.SetPasswordHash(ctx, u.ID, h); err != nil {
		s.writeError(w, r, err)
		return
	}
	_ = s.limits.reset(ctx, key)
	s.audit(ctx, AuditEvent{Type: EventPasswordChanged, UserID: u.ID, SessionID: c.sess.ID, IP: o.ip, UserAgent: o.ua})
	if _, err := s.revokeUser(ctx, u.ID, sessions.ReasonPasswordChange, c.sess.ID, "", o); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}
