package auth

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionhub/sessionhub/sessions"
)

// This file is Google login (API.md /auth/google/*; SECURITY.md 34-36):
// what a verified Google identity means for users, identities and
// sessions. The provider protocol itself is oidc_flow.go; the state cookie
// is oidc_state.go.

// googleProvider is the user_identities.provider value of Google logins.
const googleProvider = "google"

// googleLinkRequiredURL is where a person is sent when their Google email
// matches an account that Google cannot vouch for: the log-in page, which
// explains that they should log in with their password and link Google
// from there (/auth/google/link).
const googleLinkRequiredURL = "/login?error=google_link_required"

// googleDoneURL is where a finished login or link lands.
const googleDoneURL = "/"

// Callback refusals. Each is a 400 (503 for the provider being down) with
// an API.md-style JSON body, and the reason recorded in the audit event.
var (
	errGoogleState    = &apiError{http.StatusBadRequest, "invalid_state", "the Google login expired or was already used; start again"}
	errGoogleProvider = &apiError{http.StatusBadRequest, "provider_error", "Google did not complete the login"}
	errGoogleCode     = &apiError{http.StatusBadRequest, "invalid_code", "Google refused the authorization code; start again"}
	errGoogleIDToken  = &apiError{http.StatusBadRequest, "invalid_id_token", "Google's identity token could not be verified"}
	errGoogleEmail    = &apiError{http.StatusBadRequest, "invalid_email", "Google did not share a usable email address"}
	errGoogleDown     = &apiError{http.StatusServiceUnavailable, "unavailable", "Google cannot be reached; retry shortly"}
)

// newGoogle builds the Google half of the Server, or nil when cfg leaves
// it off. With Redis the used-state set is shared by all nodes.
func newGoogle(cfg GoogleConfig, rdb redis.UniversalClient, prefix string, now func() time.Time, s *Server) (*oidcClient, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = s.cfg.PublicURL
	}
	mem := newMemoryUsedStates(now)
	var used usedStates = mem
	if rdb != nil {
		used = &redisUsedStates{rdb: rdb, prefix: prefix, fallback: mem}
	}
	return newOIDCClient(cfg, used, now, s.log)
}

// withGoogle answers 404 on the Google routes when Google login is not
// configured, before any other guard (so /auth/google/link is a 404, not a
// 401, on a server without Google).
func (s *Server) withGoogle(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.google == nil {
			s.writeError(w, r, errNotFound)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// GoogleEnabled reports whether Google login is configured (for the web
// pages' "Continue with Google" button).
func (s *Server) GoogleEnabled() bool { return s.google != nil }

// handleGoogleLogin serves GET /auth/google/login: a 302 to the provider
// with state, nonce and PKCE S256, the flow kept in a sealed cookie.
func (s *Server) handleGoogleLogin(w http.ResponseWriter, r *http.Request) {
	s.googleBegin(w, r, oidcModeLogin, "", "")
}

// handleGoogleLink serves GET /auth/google/link (behind withSession): the
// same redirect, but the callback links the Google identity to the user
// of this session.
func (s *Server) handleGoogleLink(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if c == nil || !c.viaCookie() {
		s.writeError(w, r, errUnauthenticated)
		return
	}
	s.googleBegin(w, r, oidcModeLink, c.sess.UserID, c.sess.ID)
}

func (s *Server) googleBegin(w http.ResponseWriter, r *http.Request, mode, userID, sessionID string) {
	if s.google == nil {
		s.writeError(w, r, errNotFound)
		return
	}
	if !s.limitIP(w, r) {
		return
	}
	to, ck, err := s.google.begin(r.Context(), mode, userID, sessionID)
	if err != nil {
		s.writeGoogleError(w, r, err)
		return
	}
	http.SetCookie(w, ck)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusFound)
}

// handleGoogleCallback serves GET /auth/google/callback. The state cookie
// is consumed whatever happens. A bad, missing, replayed or expired state,
// a provider error, a refused code or an unverifiable ID token is a 400
// that creates nothing; only a verified identity reaches the user logic.
func (s *Server) handleGoogleCallback(w http.ResponseWriter, r *http.Request) {
	if s.google == nil {
		s.writeError(w, r, errNotFound)
		return
	}
	http.SetCookie(w, oidcClearCookie())
	if !s.limitIP(w, r) {
		s.metrics.logins.WithLabelValues(googleProvider, "throttled").Inc()
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	if pe := q.Get("error"); pe != "" {
		// Burn the state too, so the same flow cannot be finished later.
		f, _ := s.google.consume(ctx, r)
		s.googleFailed(w, r, f, "provider_error", errGoogleProvider, "provider_error", truncate(pe, 64))
		return
	}
	f, err := s.google.consume(ctx, r)
	if err != nil {
		s.googleFailed(w, r, nil, stateReason(err), errGoogleState)
		return
	}
	claims, err := s.google.complete(ctx, f, q.Get("code"))
	if err != nil {
		reason, out := "id_token_invalid", error(errGoogleIDToken)
		switch {
		case errors.Is(err, ErrOIDCExchange):
			reason, out = "code_refused", errGoogleCode
		case errors.Is(err, ErrOIDCUnavailable):
			reason, out = "provider_unavailable", errGoogleDown
		}
		s.log.Info("auth: google callback refused", "reason", reason, "err", err)
		s.googleFailed(w, r, f, reason, out)
		return
	}
	if f.Mode == oidcModeLink {
		s.googleLink(w, r, f, claims)
		return
	}
	s.googleSignIn(w, r, claims)
}

func stateReason(err error) string {
	switch {
	case errors.Is(err, ErrOIDCStateMissing):
		return "state_missing"
	case errors.Is(err, ErrOIDCStateExpired):
		return "state_expired"
	case errors.Is(err, ErrOIDCStateReplayed):
		return "state_replayed"
	case errors.Is(err, ErrOIDCStateMismatch):
		return "state_mismatch"
	}
	return "state_invalid"
}

// googleFailed records a refused callback (login_failed, method google,
// with the reason) and answers out. kv are extra detail pairs.
func (s *Server) googleFailed(w http.ResponseWriter, r *http.Request, f *oidcFlow, reason string, out error, kv ...string) {
	o := s.originOf(r)
	detail := map[string]any{"method": googleProvider, "result": "failure", "reason": reason}
	ev := AuditEvent{Type: EventLoginFailed, IP: o.ip, UserAgent: o.ua, Detail: detail}
	if f != nil {
		detail["mode"] = f.Mode
		if f.Mode == oidcModeLink {
			ev.UserID, ev.SessionID = f.UserID, f.SessionID
		}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		detail[kv[i]] = kv[i+1]
	}
	s.audit(r.Context(), ev)
	if f == nil || f.Mode == oidcModeLogin {
		s.metrics.logins.WithLabelValues(googleProvider, "failure").Inc()
	}
	s.writeGoogleError(w, r, out)
}

// writeGoogleError maps the flow's own errors to responses; anything else
// goes through the Server's error mapping (503 for a store outage, a
// logged 500 for a bug).
func (s *Server) writeGoogleError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrOIDCUnavailable) {
		err = errGoogleDown
	}
	s.writeError(w, r, err)
}

// googleSignIn turns a verified Google identity into a browser session.
// The identity is found by (google, sub), never by email; a new identity
// either creates an account or, when its email belongs to an existing
// account, is linked only under the policy of googleMayLinkByEmail.
func (s *Server) googleSignIn(w http.ResponseWriter, r *http.Request, cl *googleClaims) {
	ctx := r.Context()
	var u *User
	id, err := s.users.IdentityBySubject(ctx, googleProvider, cl.Subject)
	switch {
	case err == nil:
		// A returning person: same account whatever their email is now.
		if u, err = s.users.UserByID(ctx, id.UserID); err != nil {
			s.googleStoreFailed(w, r, err)
			return
		}
	case errors.Is(err, ErrIdentityNotFound):
		var linked bool
		u, linked, err = s.googleFirstLogin(ctx, r, cl)
		if errors.Is(err, errGoogleLinkRequired) {
			s.googleLinkRequired(w, r, u, cl)
			return
		}
		if errors.Is(err, ErrInvalidEmail) {
			s.googleFailed(w, r, nil, "email_invalid", errGoogleEmail)
			return
		}
		if err != nil {
			s.googleStoreFailed(w, r, err)
			return
		}
		if linked {
			s.googleLinked(r, u.ID, "", cl, "email")
		}
	default:
		s.googleStoreFailed(w, r, err)
		return
	}
	o := s.originOf(r)
	sess, tok, err := s.newSession(ctx, u, sessions.KindBrowser, "", googleProvider, o)
	if err != nil {
		s.googleStoreFailed(w, r, err)
		return
	}
	s.metrics.logins.WithLabelValues(googleProvider, "success").Inc()
	s.audit(ctx, AuditEvent{Type: EventLoginSucceeded, UserID: u.ID, SessionID: sess.ID, IP: o.ip, UserAgent: o.ua,
		Detail: map[string]any{"method": googleProvider, "result": "success", "kind": string(sessions.KindBrowser)}})
	s.writeCookie(w, tok.String(), sess)
	http.Redirect(w, r, googleDoneURL, http.StatusFound)
}

// errGoogleLinkRequired is googleFirstLogin's answer when the email is
// taken by an account Google may not log into.
var errGoogleLinkRequired = errors.New("auth: google email matches an account; log in and link")

// googleFirstLogin handles an identity seen for the first time: a new
// account, or the existing account of that email when policy allows
// (linked true). With errGoogleLinkRequired it returns the matching
// account, for the audit.
func (s *Server) googleFirstLogin(ctx context.Context, r *http.Request, cl *googleClaims) (u *User, linked bool, err error) {
	if cl.Email == "" {
		return nil, false, ErrInvalidEmail
	}
	existing, err := s.users.UserByEmail(ctx, cl.Email)
	switch {
	case err == nil:
		if !googleMayLinkByEmail(cl, existing) {
			return existing, false, errGoogleLinkRequired
		}
		if err := s.users.LinkIdentity(ctx, s.googleIdentity(cl, existing.ID)); err != nil {
			return nil, false, err
		}
		return existing, true, nil
	case !errors.Is(err, ErrUserNotFound):
		return nil, false, err
	}
	u, err = s.googleCreateUser(ctx, r, cl)
	if errors.Is(err, ErrEmailTaken) || errors.Is(err, ErrIdentityTaken) {
		// A concurrent first login of the same Google account won the
		// race: this is now a returning user.
		if id, ierr := s.users.IdentityBySubject(ctx, googleProvider, cl.Subject); ierr == nil {
			u, uerr := s.users.UserByID(ctx, id.UserID)
			return u, false, uerr
		}
	}
	if errors.Is(err, ErrEmailTaken) {
		// Someone signed up with this email a moment ago: the same rule
		// as if they had been first.
		existing, lerr := s.users.UserByEmail(ctx, cl.Email)
		if lerr != nil {
			return nil, false, lerr
		}
		return existing, false, errGoogleLinkRequired
	}
	return u, false, err
}

// googleMayLinkByEmail is the linking policy of API.md and SECURITY.md 36:
// a Google login may enter an existing account found by email only if
// Google verified the address, Google is authoritative for it (@gmail.com,
// or a Workspace hd claim naming its domain), and the account's own email
// is verified. v1 verifies no password account's email, so in practice a
// password account is never entered this way: its owner logs in with the
// password and links Google from there.
func googleMayLinkByEmail(cl *googleClaims, u *User) bool {
	return bool(cl.EmailVerified) && cl.authoritative() && u.EmailVerified
}

// googleCreateUser stores a new account for a first-time Google user,
// without a password, its email verified if Google says so, together with
// its identity (one transaction).
func (s *Server) googleCreateUser(ctx context.Context, r *http.Request, cl *googleClaims) (*User, error) {
	email, err := normalizeEmail(cl.Email)
	if err != nil {
		return nil, err
	}
	name := cl.Name
	if rs := []rune(name); len(rs) > maxNameChars {
		name = string(rs[:maxNameChars])
	}
	if checkName(name) != nil {
		name = "" // a display name is optional; a bad one is dropped
	}
	scopes, err := cleanScopes(s.cfg.DefaultScopes)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	u := &User{ID: newUserID(), Email: email, EmailVerified: bool(cl.EmailVerified), Name: name,
		Scopes: scopes, CreatedAt: now, UpdatedAt: now}
	if err := s.users.CreateUserWithIdentity(ctx, u, s.googleIdentity(cl, u.ID)); err != nil {
		return nil, err
	}
	o := s.originOf(r)
	s.audit(ctx, AuditEvent{Type: EventSignup, UserID: u.ID, IP: o.ip, UserAgent: o.ua,
		Detail: map[string]any{"method": googleProvider, "email_verified": u.EmailVerified}})
	return u, nil
}

func (s *Server) googleIdentity(cl *googleClaims, userID string) *Identity {
	return &Identity{Provider: googleProvider, Subject: cl.Subject, UserID: userID,
		Email: truncate(cl.Email, maxEmailBytes), EmailVerified: bool(cl.EmailVerified),
		CreatedAt: s.now().UTC().Truncate(time.Microsecond)}
}

// googleLinkRequired refuses to enter an existing account by email and
// sends the person to the log-in page, which tells them to log in with
// their password and link Google from their account.
func (s *Server) googleLinkRequired(w http.ResponseWriter, r *http.Request, u *User, cl *googleClaims) {
	o := s.originOf(r)
	ev := AuditEvent{Type: EventLoginFailed, IP: o.ip, UserAgent: o.ua, Detail: map[string]any{
		"method": googleProvider, "result": "failure", "reason": "link_required",
		"email_verified": bool(cl.EmailVerified), "authoritative": cl.authoritative(),
	}}
	if u != nil {
		ev.UserID = u.ID
	}
	s.audit(r.Context(), ev)
	s.metrics.logins.WithLabelValues(googleProvider, "failure").Inc()
	w.Header().Set("Cache-Control", "no-store")
	// The email is not put in the URL: it would reach logs and Referer.
	http.Redirect(w, r, googleLinkRequiredURL, http.StatusFound)
}

// googleLink finishes /auth/google/link: the identity joins the user who
// started the flow, provided that user's session is still alive (it is
// named in the sealed state cookie, so this works even when the session
// cookie is SameSite=Strict and the provider's redirect does not carry it).
func (s *Server) googleLink(w http.ResponseWriter, r *http.Request, f *oidcFlow, cl *googleClaims) {
	ctx := r.Context()
	sess, err := s.store.Lookup(ctx, f.SessionID)
	if errors.Is(err, sessions.ErrNotFound) || (err == nil && (sess.UserID != f.UserID || sess.Kind != sessions.KindBrowser)) {
		s.googleFailed(w, r, f, "session_gone", errUnauthenticated)
		return
	}
	if err != nil {
		s.googleStoreFailed(w, r, err)
		return
	}
	id, err := s.users.IdentityBySubject(ctx, googleProvider, cl.Subject)
	switch {
	case err == nil && id.UserID == f.UserID:
		// Already linked to this user: nothing to do.
		http.Redirect(w, r, googleDoneURL, http.StatusFound)
		return
	case err == nil:
		s.googleFailed(w, r, f, "identity_taken", ErrIdentityTaken)
		return
	case !errors.Is(err, ErrIdentityNotFound):
		s.googleStoreFailed(w, r, err)
		return
	}
	if err := s.users.LinkIdentity(ctx, s.googleIdentity(cl, f.UserID)); err != nil {
		if errors.Is(err, ErrIdentityTaken) {
			s.googleFailed(w, r, f, "identity_taken", ErrIdentityTaken)
			return
		}
		s.googleStoreFailed(w, r, err)
		return
	}
	s.googleLinked(r, f.UserID, f.SessionID, cl, "session")
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, googleDoneURL, http.StatusFound)
}

// googleLinked records identity_linked; via says how the link was made
// ("session": explicitly from a logged-in session; "email": by the
// verified-email policy).
func (s *Server) googleLinked(r *http.Request, userID, sessionID string, cl *googleClaims, via string) {
	o := s.originOf(r)
	s.audit(r.Context(), AuditEvent{Type: EventIdentityLinked, UserID: userID, SessionID: sessionID, IP: o.ip, UserAgent: o.ua,
		Detail: map[string]any{"provider": googleProvider, "subject": cl.Subject, "via": via}})
}

// googleStoreFailed answers a store error met after the identity was
// verified (503 when a store is down), recording the failed login.
func (s *Server) googleStoreFailed(w http.ResponseWriter, r *http.Request, err error) {
	o := s.originOf(r)
	s.audit(r.Context(), AuditEvent{Type: EventLoginFailed, IP: o.ip, UserAgent: o.ua,
		Detail: map[string]any{"method": googleProvider, "result": "failure", "reason": "store_error"}})
	s.metrics.logins.WithLabelValues(googleProvider, "failure").Inc()
	s.writeError(w, r, err)
}
