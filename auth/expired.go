package auth

import (
	"context"
	"time"

	"github.com/sessionhub/sessionhub/sessions"
)

// recordExpired counts the sessions an expiry pass marked (sessions.Store.
// OnExpire, which New registers) in sessionhub_sessions_revoked_total
// {reason="expired"} and records a session_revoked event with reason
// "expired" for each: API.md lists expired among the revocation reasons, and the
// audit log is where an admin looks for why a session ended. The Store
// hands each expired session to exactly one pass in the cluster, so each
// gets one row; the pass's sessions are written in one round trip.
//
// The reports do not count these rows: revocations and sessions are
// counted from the sessions table (revoked_at, revoke_reason), logins
// from login and refresh events only. At is when the expiry was recorded;
// detail.expired_at is when the session actually expired (up to the
// write-behind interval and one pass earlier).
func (s *Server) recordExpired(ctx context.Context, expired []*sessions.Session) {
	s.metrics.sessionsRevoked.WithLabelValues(string(sessions.ReasonExpired)).Add(float64(len(expired)))
	events := make([]AuditEvent, len(expired))
	for i, x := range expired {
		events[i] = AuditEvent{Type: EventSessionRevoked, UserID: x.UserID, SessionID: x.ID,
			Detail: map[string]any{
				"reason":     string(sessions.ReasonExpired),
				"kind":       string(x.Kind),
				"expired_at": x.RevokedAt.UTC().Format(time.RFC3339Nano),
			}}
	}
	s.auditAll(ctx, events)
}
