package auth

import (
	"context"
	"fmt"
	"regexp"

	"github.com/sessionhub/sessionhub/sessions"
)

// The methods below serve the command line (`sessionhub user …`,
// `sessionhub session …`); they have the same effects and audit trail as
// the HTTP routes, with ip "" and user agent "cli".

var cliOrigin = origin{ua: "cli"}

// serviceName is what a worker may be called (it appears as the JWT svc
// claim and in message "from" fields as service:<name>).
var serviceName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// CreateUser creates a user with the default scopes plus scopes. An empty
// password makes an account without one (it cannot log in with a password
// until one is set). Errors: ErrInvalidEmail, ErrWeakPassword,
// ErrInvalidScope, ErrEmailTaken.
func (s *Server) CreateUser(ctx context.Context, email, name, password string, scopes []string) (*User, error) {
	u, err := s.createUser(ctx, email, name, password, scopes, false)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, AuditEvent{Type: EventAdminAction, UserID: u.ID, UserAgent: cliOrigin.ua,
		Detail: map[string]any{"action": "create_user", "target_user_id": u.ID, "scopes": u.Scopes}})
	return u, nil
}

// GrantScopes adds scopes to the user with this email.
//
// Sessions copy their user's scopes when they are created, so a grant
// widens no existing session and no token minted from one: the new scopes
// take effect only through a new session (a fresh login, which is a new id
// and secret). That is the rotation SECURITY.md 4 asks for a privilege
// change; nothing is revoked, because nothing already issued gained power.
func (s *Server) GrantScopes(ctx context.Context, email string, scopes ...string) (*User, error) {
	clean, err := cleanScopes(scopes)
	if err != nil {
		return nil, err
	}
	u, err := s.users.UserByEmail(ctx, email)
	if err != nil {
		return nil, err
	}
	u, err = s.users.AddScopes(ctx, u.ID, clean)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, AuditEvent{Type: EventAdminAction, UserID: u.ID, UserAgent: cliOrigin.ua,
		Detail: map[string]any{"action": "grant_scopes", "target_user_id": u.ID, "scopes": clean}})
	return u, nil
}

// CreateServiceSession creates a service session for a worker named
// service, carrying exactly scopes, each of which the user must hold
// (exactly, or under a held wildcard of the same kind). It returns the
// session token "<id>.<secret>": the only copy, to print once.
func (s *Server) CreateServiceSession(ctx context.Context, email, service string, scopes []string) (string, error) {
	if !serviceName.MatchString(service) {
		return "", ErrInvalidService
	}
	clean, err := cleanScopes(scopes)
	if err != nil {
		return "", err
	}
	u, err := s.users.UserByEmail(ctx, email)
	if err != nil {
		return "", err
	}
	for _, sc := range clean {
		if !holdsScope(u.Scopes, sc) {
			return "", fmt.Errorf("%w: %q", ErrScopeNotHeld, sc)
		}
	}
	svc := *u
	svc.Scopes = clean
	sess, tok, err := s.newSession(ctx, &svc, sessions.KindService, service, "service", cliOrigin)
	if err != nil {
		return "", err
	}
	// Creating it is how a worker logs in: API.md's logins report has a
	// service method, counted from this event.
	s.metrics.logins.WithLabelValues("service", "success").Inc()
	s.audit(ctx, AuditEvent{Type: EventLoginSucceeded, UserID: u.ID, SessionID: sess.ID, IP: cliOrigin.ip, UserAgent: cliOrigin.ua,
		Detail: map[string]any{"method": "service", "result": "success", "kind": string(sessions.KindService)}})
	return tok.String(), nil
}

// RevokeSession revokes one session by id (reason admin); ErrNotFound
// (sessions) when no live session has it.
func (s *Server) RevokeSession(ctx context.Context, id string) error {
	if err := s.revoke(ctx, id, sessions.ReasonAdmin, "", cliOrigin); err != nil {
		return err
	}
	s.audit(ctx, AuditEvent{Type: EventAdminAction, UserAgent: cliOrigin.ua,
		Detail: map[string]any{"action": "revoke_session", "target_session_id": id}})
	return nil
}

// LogoutAll revokes every session of the user with this email (reason
// admin: an operator did it) and returns how many ended.
func (s *Server) LogoutAll(ctx context.Context, email string) (int, error) {
	u, err := s.users.UserByEmail(ctx, email)
	if err != nil {
		return 0, err
	}
	ids, err := s.revokeUser(ctx, u.ID, sessions.ReasonAdmin, "", "", cliOrigin)
	if err != nil {
		return 0, err
	}
	s.audit(ctx, AuditEvent{Type: EventAdminAction, UserID: u.ID, UserAgent: cliOrigin.ua,
		Detail: map[string]any{"action": "logout_all", "target_user_id": u.ID, "sessions_revoked": len(ids)}})
	return len(ids), nil
}
