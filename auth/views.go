package auth

import (
	"time"

	"github.com/sessionhub/sessionhub/sessions"
)

// userView is API.md's `user`: never the password hash or scopes.
type userView struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

func viewUser(u *User) userView {
	return userView{ID: u.ID, Email: u.Email, Name: u.Name, CreatedAt: u.CreatedAt.UTC()}
}

// sessionView is API.md's `session`: the public id only, never the secret,
// its hash or the CSRF token.
type sessionView struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	Device     string    `json:"device"`
	Current    bool      `json:"current"`
}

func viewSession(x *sessions.Session, currentID string) sessionView {
	return sessionView{
		ID: x.ID, Kind: string(x.Kind), CreatedAt: x.CreatedAt.UTC(), LastSeenAt: x.LastSeenAt.UTC(),
		ExpiresAt: minTime(x.ExpiresAt, x.AbsoluteExpiresAt).UTC(),
		IP:        x.IP, UserAgent: x.UserAgent, Device: x.Device, Current: x.ID == currentID,
	}
}

func viewSessions(list []*sessions.Session, currentID string) []sessionView {
	out := make([]sessionView, 0, len(list))
	for _, x := range list {
		out = append(out, viewSession(x, currentID))
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// accountResponse is the body of signup, login and GET /session.
type accountResponse struct {
	User      userView    `json:"user"`
	Session   sessionView `json:"session"`
	CSRFToken string      `json:"csrf_token"`
}

// mobileLoginResponse is the body of a mobile login: no cookie, no CSRF.
type mobileLoginResponse struct {
	User         userView    `json:"user"`
	Session      sessionView `json:"session"`
	RefreshToken string      `json:"refresh_token"`
	AccessToken  string      `json:"access_token"`
	ExpiresIn    int         `json:"expires_in"`
}

type refreshResponse struct {
	RefreshToken string `json:"refresh_token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
}

type tokenResponse struct {
	Token     string `json:"token"`
	TokenType string `json:"token_type"`
	ExpiresIn int    `json:"expires_in"`
}

type sessionsResponse struct {
	Sessions []sessionView `json:"sessions"`
}

type usersPage struct {
	Users      []userView `json:"users"`
	NextCursor *string    `json:"next_cursor"`
}

type userResponse struct {
	User userView `json:"user"`
}

type logoutAllResponse struct {
	SessionsRevoked int `json:"sessions_revoked"`
	SocketsClosed   int `json:"sockets_closed"`
	NodesAcked      int `json:"nodes_acked"`
}

type revokeResponse struct {
	SocketsClosed int `json:"sockets_closed"`
	NodesAcked    int `json:"nodes_acked"`
}

type nodeView struct {
	ID          string    `json:"id"`
	Connections int       `json:"connections"`
	StartedAt   time.Time `json:"started_at"`
}

type statsResponse struct {
	Nodes          []nodeView `json:"nodes"`
	Connections    int        `json:"connections"`
	SessionsActive int64      `json:"sessions_active"`
}

// secondsOf rounds a TTL to whole seconds for expires_in.
func secondsOf(d time.Duration) int { return int((d + time.Second/2) / time.Second) }
