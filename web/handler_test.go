package web

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func serve(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	req.Host = "app.example.com:8443"
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return string(b)
}

func requireSecurityHeaders(t *testing.T, res *http.Response) {
	t.Helper()
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{
		"default-src 'self'", "script-src 'self'", "style-src 'self'",
		"connect-src 'self' ws://app.example.com:8443 wss://app.example.com:8443",
		"frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'", "object-src 'none'",
		"require-trusted-types-for 'script'",
	} {
		require.Contains(t, csp, want)
	}
	require.NotContains(t, csp, "unsafe-inline")
	require.NotContains(t, csp, "unsafe-eval")
	require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
	require.Equal(t, "no-referrer", res.Header.Get("Referrer-Policy"))
	require.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))
}

func TestPagesServedWithSecurityHeaders(t *testing.T) {
	t.Parallel()
	h := Handler(Config{})
	for _, p := range []string{"/", "/devices", "/login", "/signup", "/live", "/console"} {
		res := serve(t, h, http.MethodGet, p, nil)
		require.Equal(t, http.StatusOK, res.StatusCode, p)
		require.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"), p)
		require.Equal(t, "no-cache", res.Header.Get("Cache-Control"), p)
		require.NotEmpty(t, res.Header.Get("ETag"), p)
		requireSecurityHeaders(t, res)
		html := body(t, res)
		require.Contains(t, html, "<title>", p)
	}
}

// TestPagesCarryTheSharedLayout checks, in every page as served, the pieces
// it takes from pages/layout.html: the head (its own title, the stylesheet,
// the favicon, then its module script and nothing else) and, on the
// signed-in pages, the top bar and the dialog and toasts the scripts fill
// in. A partial that is broken, missing or called in the wrong place fails
// here, not only in a browser.
func TestPagesCarryTheSharedLayout(t *testing.T) {
	t.Parallel()
	h := Handler(Config{}).(*handler)
	v := "/assets/" + h.version + "/"
	head := `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="color-scheme" content="light dark">
  <link rel="icon" href="` + v + `favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="` + v + `app.css">
  <title>`
	topbar := []string{
		`<a class="skip-link" href="#main">Skip to content</a>`, `<header class="topbar">`,
		`<a href="/">My devices</a>`, `<a href="/live">Live</a>`, `<a href="/console" hidden>Admin</a>`,
		`id="live-pill"`, `id="account-initial"`, `id="account-name"`, `id="account-email"`,
		`<button type="button" class="ghost small" id="logout"><svg class="icon" aria-hidden="true"><use href="` + v + `icons.svg#logout"/></svg><span class="btn-label">Log out</span></button>`,
	}
	overlays := []string{
		`<dialog id="confirm" aria-labelledby="confirm-title" aria-describedby="confirm-text">`,
		`id="confirm-title"`, `id="confirm-text"`, `id="confirm-ok"`, `<div id="toasts" aria-live="polite"></div>`,
	}
	scriptTag := regexp.MustCompile(`<script[^>]*>`)
	for _, tc := range []struct {
		path, title, script string
		signedIn            bool
	}{
		{"/", "My devices", "devices.js", true},
		{"/devices", "My devices", "devices.js", true},
		{"/live", "Live", "live.js", true},
		{"/console", "Admin console", "console.js", true},
		{"/login", "Log in", "auth.js", false},
		{"/signup", "Log in", "auth.js", false},
		{"/no-such-page", "Page not found", "", false},
	} {
		res := serve(t, h, http.MethodGet, tc.path, map[string]string{"Accept": "text/html"})
		html := body(t, res)
		require.NotContains(t, html, "{{", tc.path)
		require.True(t, strings.HasPrefix(html, head), "%s: the shared head, first:\n%s", tc.path, html)
		require.True(t, strings.HasSuffix(html, "\n</body>\n</html>\n"), tc.path)
		headEnd := strings.Index(html, "\n</head>\n<body>\n")
		require.Positive(t, headEnd, tc.path)
		require.Equal(t, 1, strings.Count(html, "<title>"), tc.path)
		require.Contains(t, html[:headEnd], "<title>"+tc.title+" · sessionhub</title>", tc.path)

		var want []string
		if tc.script != "" {
			want = []string{`<script type="module" src="` + v + tc.script + `">`}
			require.Contains(t, html[:headEnd], want[0]+"</script>", tc.path)
		}
		require.Equal(t, want, scriptTag.FindAllString(html, -1), tc.path)

		mainAt := strings.Index(html, "\n  <main ")
		mainEnd := strings.Index(html, "\n  </main>\n")
		require.Positive(t, mainAt, tc.path)
		require.Greater(t, mainEnd, mainAt, tc.path)
		for _, piece := range topbar {
			if !tc.signedIn {
				require.NotContains(t, html, piece, tc.path)
				continue
			}
			require.Equal(t, 1, strings.Count(html, piece), "%s: %s", tc.path, piece)
			at := strings.Index(html, piece)
			require.True(t, at > headEnd && at < mainAt, "%s: %s between <body> and <main>", tc.path, piece)
		}
		for _, piece := range overlays {
			if !tc.signedIn {
				require.NotContains(t, html, piece, tc.path)
				continue
			}
			require.Equal(t, 1, strings.Count(html, piece), "%s: %s", tc.path, piece)
			require.Greater(t, strings.Index(html, piece), mainEnd, "%s: %s after </main>", tc.path, piece)
		}
	}
}

// TestNoInlineScriptOrStyle keeps the pages compatible with the CSP: every
// script is an external module, no element carries a style attribute or an
// event-handler attribute, and no script builds HTML from strings.
func TestNoInlineScriptOrStyle(t *testing.T) {
	t.Parallel()
	inlineScript := regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`)
	styleAttr := regexp.MustCompile(`(?i)\sstyle\s*=`)
	handlerAttr := regexp.MustCompile(`(?i)<[^>]+\son[a-z]+\s*=`)
	styleTag := regexp.MustCompile(`(?i)<style`)
	sinks := regexp.MustCompile(`\.(innerHTML|outerHTML|insertAdjacentHTML)\b|document\.write|\beval\(|new Function\(`)
	err := fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(path)
		require.NoError(t, err)
		s := string(b)
		switch {
		case strings.HasSuffix(path, ".html"):
			require.False(t, inlineScript.MatchString(s), "%s: inline script", path)
			require.False(t, styleAttr.MatchString(s), "%s: style attribute", path)
			require.False(t, handlerAttr.MatchString(s), "%s: event-handler attribute", path)
			require.False(t, styleTag.MatchString(s), "%s: <style> element", path)
		case strings.HasSuffix(path, ".js"):
			require.False(t, sinks.MatchString(s), "%s: HTML string sink or eval", path)
		}
		return nil
	})
	require.NoError(t, err)
}

func TestAssetsVersionedAndImmutable(t *testing.T) {
	t.Parallel()
	h := Handler(Config{}).(*handler)
	res := serve(t, h, http.MethodGet, "/live", nil)
	html := body(t, res)
	m := regexp.MustCompile(`src="(/assets/[0-9a-f]{12}/live\.js)"`).FindStringSubmatch(html)
	require.NotNil(t, m, "the page loads its module from a versioned path")
	require.Contains(t, html, `href="/assets/`+h.version+`/app.css"`)

	res = serve(t, h, http.MethodGet, m[1], nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "text/javascript; charset=utf-8", res.Header.Get("Content-Type"))
	require.Equal(t, cacheImmutable, res.Header.Get("Cache-Control"))
	requireSecurityHeaders(t, res)

	// The library is served next to the page modules and at its stable URL.
	res = serve(t, h, http.MethodGet, "/assets/"+h.version+"/sessionhub.js", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	res = serve(t, h, http.MethodGet, "/sessionhub.js", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "no-cache", res.Header.Get("Cache-Control"))
	require.Equal(t, "*", res.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, body(t, res), "export class SessionHub")

	// Another build's version is served but not cached under its URL.
	res = serve(t, h, http.MethodGet, "/assets/000000000000/app.css", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "no-cache", res.Header.Get("Cache-Control"))
	require.Equal(t, "text/css; charset=utf-8", res.Header.Get("Content-Type"))
}

func TestConditionalGetAndHead(t *testing.T) {
	t.Parallel()
	h := Handler(Config{})
	res := serve(t, h, http.MethodGet, "/login", nil)
	etag := res.Header.Get("ETag")
	res = serve(t, h, http.MethodGet, "/login", map[string]string{"If-None-Match": etag})
	require.Equal(t, http.StatusNotModified, res.StatusCode)

	res = serve(t, h, http.MethodHead, "/login", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Empty(t, body(t, res))
}

func TestConfigJSON(t *testing.T) {
	t.Parallel()
	for _, enabled := range []bool{false, true} {
		res := serve(t, Handler(Config{GoogleEnabled: enabled}), http.MethodGet, "/config.json", nil)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, "application/json", res.Header.Get("Content-Type"))
		var got struct {
			GoogleEnabled bool `json:"google_enabled"`
		}
		require.NoError(t, json.NewDecoder(res.Body).Decode(&got))
		require.Equal(t, enabled, got.GoogleEnabled)
	}
}

func TestUnknownPathsAre404(t *testing.T) {
	t.Parallel()
	h := Handler(Config{})
	for _, p := range []string{"/nope", "/assets/", "/assets/x", "/assets/" + "abc/../../handler.go", "/pages/auth.html",
		"/pages/layout.html", "/layout.html",
		"/sessionhub.js/", "/console/", "/assets/abc/nope.js", "/assets/abc/def/app.css", "/handler.go", "/.well-known/nope"} {
		res := serve(t, h, http.MethodGet, p, nil)
		require.Equal(t, http.StatusNotFound, res.StatusCode, p)
		require.Equal(t, "application/json", res.Header.Get("Content-Type"), p)
		require.Contains(t, body(t, res), `"error":"not_found"`, p)
		requireSecurityHeaders(t, res)
	}
	res := serve(t, h, http.MethodGet, "/nope", map[string]string{"Accept": "text/html,application/xhtml+xml"})
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Contains(t, body(t, res), "This page doesn't exist")
	requireSecurityHeaders(t, res)
}

func TestMutationsRefused(t *testing.T) {
	t.Parallel()
	h := Handler(Config{})
	res := serve(t, h, http.MethodPost, "/login", nil)
	require.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
	require.Equal(t, "GET, HEAD", res.Header.Get("Allow"))
}

func TestHostNotEchoedWhenOdd(t *testing.T) {
	t.Parallel()
	require.Contains(t, contentSecurityPolicy("localhost:8080"), "ws://localhost:8080 wss://localhost:8080")
	require.Contains(t, contentSecurityPolicy("[::1]:8080"), "ws://[::1]:8080")
	for _, bad := range []string{"", "evil.com; script-src *", "a b", "x'y", strings.Repeat("a", 300)} {
		csp := contentSecurityPolicy(bad)
		require.Contains(t, csp, "connect-src 'self';", bad)
	}
}
