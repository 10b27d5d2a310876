// Package web serves sessionhub's own pages — log in / sign up, "My
// devices", the live socket panel and the admin console — and the browser
// client library sessionhub.js, all embedded in the binary with embed.FS so
// that `sessionhub serve` needs no build step and no files on disk.
//
// Call Handler once and mount the result as the catch-all route, after every
// API route: it answers only the paths it knows (see routes in handler.go)
// and 404 for everything else.
//
// The pages are HTML, CSS and ES modules. Each page under pages/ is an
// html/template that takes the pieces it shares with the others (the head,
// the top bar, the dialog and toasts) from pages/layout.html; Handler renders
// them once, so a request serves fixed bytes. The pages hold no secret
// anywhere but in memory: the session rides the HttpOnly cookie, the CSRF
// token is fetched from GET /session on every page load and kept in a
// closure, and the socket JWT lives only as long as the handshake that uses
// it. A strict Content-Security-Policy (no inline script or style, Trusted
// Types) backs this up.
//
// web imports only the standard library.
package web
