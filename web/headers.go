package web

import (
	"net/http"
	"strings"
)

// setSecurityHeaders puts the headers every response of this handler
// carries, pages, assets and errors alike.
//
// Referrer-Policy is no-referrer: no page needs to tell anyone where the
// user came from, and the console's URLs may hold an e-mail being searched.
// It does not weaken the server's origin checks: fetch() in "cors" mode and
// WebSocket handshakes send Origin whatever the referrer policy (only plain
// HTML form posts would send "Origin: null", and the pages post nothing
// without fetch).
func setSecurityHeaders(h http.Header, host string) {
	h.Set("Content-Security-Policy", contentSecurityPolicy(host))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY") // for browsers that predate frame-ancestors
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
}

// contentSecurityPolicy allows only this origin's own files: no inline
// script or style, no eval, no plugins, no framing, no <base>, forms posting
// only here, and Trusted Types so that no string ever reaches an HTML sink
// (the pages build the DOM with textContent and createElement).
//
// connect-src names ws:// and wss:// of the request's host because older
// browsers do not count WebSocket URLs as 'self'. A Host that is not a plain
// host[:port] is left out rather than echoed into the header.
func contentSecurityPolicy(host string) string {
	connect := "'self'"
	if validHost(host) {
		connect += " ws://" + host + " wss://" + host
	}
	return strings.Join([]string{
		"default-src 'self'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' data:",
		"font-src 'self'",
		"connect-src " + connect,
		"object-src 'none'",
		"frame-ancestors 'none'",
		"base-uri 'none'",
		"form-action 'self'",
		"require-trusted-types-for 'script'",
		"trusted-types 'none'",
	}, "; ")
}

// maxHostLen bounds the Host echoed into the CSP: a DNS name is at most 253
// bytes, plus a port.
const maxHostLen = 260

// validHost reports whether host is a DNS name, IPv4 or bracketed IPv6
// address with an optional port, and nothing else.
func validHost(host string) bool {
	if host == "" || len(host) > maxHostLen {
		return false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}
