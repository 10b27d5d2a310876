package auth

import (
	"net/http"
	"strings"
	"time"

	"github.com/sessionhub/sessionhub/sessions"
)

// CookieName is the session cookie. The __Host- prefix makes browsers
// insist on Secure, Path=/ and no Domain, so no sibling subdomain can set or
// shadow it.
const CookieName = "__Host-sessionhub"

// maxCookieValue bounds what is read from the cookie before parsing; a
// session token is 22+1+47 bytes.
const maxCookieValue = 128

// cookieToken returns the session cookie's raw value, or "" when absent.
// Only the first cookie of that name counts.
func cookieToken(r *http.Request) string {
	cs := r.CookiesNamed(CookieName)
	if len(cs) == 0 || len(cs[0].Value) > maxCookieValue {
		return ""
	}
	return cs[0].Value
}

// writeCookie is the one place that sets or clears the session cookie.
// With tok non-empty it sets tok with Max-Age = what remains of sess
// (min of idle and absolute); with tok empty it clears (Max-Age=0). It
// replaces any session cookie already on w, so a response never carries
// two, and marks the response no-store.
//
// What remains is counted from sess.LastSeenAt, the instant its expiry was
// set (created or slid), not from a later reading of the clock: a fresh or
// just-slid session has the whole idle TTL left, and a second reading a few
// microseconds on would round Max-Age down to TTL-1 (43199 for 12 h).
func (s *Server) writeCookie(w http.ResponseWriter, tok string, sess *sessions.Session) {
	c := &http.Cookie{
		Name:        CookieName,
		Value:       tok,
		Path:        "/",
		Secure:      true,
		HttpOnly:    true,
		SameSite:    s.cfg.CookieSameSite,
		Partitioned: s.cfg.CookiePartitioned,
		MaxAge:      -1, // written as Max-Age=0
	}
	if tok != "" && sess != nil {
		if secs := int(sess.MaxAge(sess.LastSeenAt) / time.Second); secs > 0 {
			c.MaxAge = secs
		} else {
			c.Value = ""
		}
	}
	h := w.Header()
	kept := h.Values("Set-Cookie")[:0:0]
	for _, v := range h.Values("Set-Cookie") {
		if !strings.HasPrefix(v, CookieName+"=") {
			kept = append(kept, v)
		}
	}
	h.Del("Set-Cookie")
	for _, v := range kept {
		h.Add("Set-Cookie", v)
	}
	h.Add("Set-Cookie", c.String())
	h.Set("Cache-Control", "no-store")
}

// clearCookie ends the cookie and asks the browser to drop every cookie of
// this origin (logout).
func (s *Server) clearCookie(w http.ResponseWriter) {
	s.writeCookie(w, "", nil)
	w.Header().Set("Clear-Site-Data", `"cookies"`)
}
