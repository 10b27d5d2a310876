package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"io/fs"
	"maps"
	"net/http"
	"path"
	"slices"
	"sort"
	"strings"
	"time"
)

// Config is what the pages need to know about the server they run on.
// The zero value is a server without Google login.
type Config struct {
	// GoogleEnabled shows "Continue with Google" on the log-in page, linking
	// to /auth/google/login. Leave it false when GOOGLE_CLIENT_ID is unset:
	// the button would lead to a 404.
	GoogleEnabled bool
}

//go:embed sessionhub.js assets pages
var files embed.FS

// asset is one embedded file, ready to serve: its bytes, their ETag and the
// name whose extension gives the Content-Type.
type asset struct {
	name string
	body []byte
	etag string
}

// handler serves the embedded pages and assets. It holds no mutable state,
// so one handler is safe for any number of concurrent requests.
type handler struct {
	version string            // hash of every asset: the path segment of /assets/<version>/
	pages   map[string]*asset // by URL path
	assets  map[string]*asset // by file name under /assets/<version>/
	client  *asset            // sessionhub.js at its stable URL
	config  *asset            // /config.json
	robots  *asset
	notHTML *asset // the 404 page for browsers
}

// Cache policies. Versioned assets never change under their URL, so a year
// is safe; everything else is revalidated on each use (a cheap 304 through
// the ETag) so a deploy is seen at once and pages never mix versions.
const (
	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
)

// pageRoutes maps URL paths to the page that serves them. /console rather
// than /admin because /admin/... belongs to the API, and a router that
// mounts /admin as a sub-router would swallow the bare path.
func pageRoutes() map[string]string {
	return map[string]string{
		"/":        "devices.html",
		"/devices": "devices.html",
		"/login":   "auth.html",
		"/signup":  "auth.html",
		"/live":    "live.html",
		"/console": "console.html",
	}
}

// Handler returns the http.Handler serving every page and asset. Mount it as
// the catch-all after every API route: it answers 404 for any path it does
// not own.
//
// Routes: the pages of pageRoutes; /assets/<version>/<file> (long-cached,
// the version is a hash of all assets); /sessionhub.js (the client library
// at a stable URL, importable cross-origin); /config.json ({"google_enabled":
// bool}, read by the log-in page because inline script is forbidden);
// /robots.txt.
func Handler(cfg Config) http.Handler {
	h := &handler{
		pages:  make(map[string]*asset),
		assets: make(map[string]*asset),
	}
	client := mustRead("sessionhub.js")
	h.client = newAsset("sessionhub.js", client)

	// The version covers every file a page may load, the library included.
	sum := sha256.New()
	entries, _ := fs.ReadDir(files, "assets")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		body := mustRead("assets/" + n)
		h.assets[n] = newAsset(n, body)
		sum.Write([]byte(n))
		sum.Write(body)
	}
	sum.Write(client)
	h.version = hex.EncodeToString(sum.Sum(nil))[:12]
	h.assets["sessionhub.js"] = h.client

	pages := renderPages(h.version)
	for route, page := range pageRoutes() {
		h.pages[route] = pages[page]
	}
	h.notHTML = pages[notFoundPage]

	conf, _ := json.Marshal(struct {
		GoogleEnabled bool `json:"google_enabled"`
	}{cfg.GoogleEnabled})
	h.config = newAsset("config.json", conf)
	h.robots = newAsset("robots.txt", []byte("User-agent: *\nDisallow: /\n"))
	return h
}

// notFoundPage is the page of pages/ that answers 404 to browsers.
const notFoundPage = "404.html"

// renderPages executes each page of pages/ with the pieces it shares with
// the others (pages/layout.html) and points its asset URLs under
// /assets/<version>/. It runs once, when the handler is built: a request
// only copies the bytes, and each page's ETag is that of its final bytes.
func renderPages(version string) map[string]*asset {
	tmpl, err := template.ParseFS(files, "pages/*.html")
	if err != nil {
		// Like a missing file (mustRead): a build mistake every test catches.
		panic("web: pages: " + err.Error())
	}
	prefix := []byte(`"/assets/` + version + `/`)
	out := make(map[string]*asset)
	for _, page := range append(slices.Collect(maps.Values(pageRoutes())), notFoundPage) {
		if out[page] != nil {
			continue // a page with more than one route
		}
		var b bytes.Buffer
		if err := tmpl.ExecuteTemplate(&b, page, nil); err != nil {
			panic("web: page " + page + ": " + err.Error())
		}
		out[page] = newAsset(page, bytes.ReplaceAll(b.Bytes(), []byte(`"/assets/`), prefix))
	}
	return out
}

func mustRead(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		// The names are fixed at compile time next to the embed directive;
		// a missing one is a build mistake, caught by every test.
		panic("web: embedded file missing: " + name)
	}
	return b
}

func newAsset(name string, body []byte) *asset {
	s := sha256.Sum256(body)
	return &asset{name: name, body: body, etag: `"` + hex.EncodeToString(s[:16]) + `"`}
}

// ServeHTTP routes a request to a page, an asset or a 404.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header(), r.Host)
	a, cache := h.lookup(r.URL.Path)
	if a == nil {
		h.notFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "This path only answers GET and HEAD.")
		return
	}
	if a == h.client {
		// The library is public code, meant to be imported by apps on
		// other origins; module scripts need CORS for that.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Cross-Origin-Resource-Policy", "cross-origin")
	}
	w.Header().Set("Cache-Control", cache)
	w.Header().Set("ETag", a.etag)
	w.Header().Set("Content-Type", contentType(a.name))
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}

// lookup finds what serves urlPath and its cache policy, or nil.
func (h *handler) lookup(urlPath string) (*asset, string) {
	if a, ok := h.pages[urlPath]; ok {
		return a, cacheRevalidate
	}
	switch urlPath {
	case "/sessionhub.js":
		return h.client, cacheRevalidate
	case "/config.json":
		return h.config, cacheRevalidate
	case "/robots.txt":
		return h.robots, cacheRevalidate
	}
	rest, ok := strings.CutPrefix(urlPath, "/assets/")
	if !ok {
		return nil, ""
	}
	version, name, ok := strings.Cut(rest, "/")
	if !ok || version == "" || strings.Contains(name, "/") {
		return nil, ""
	}
	a, ok := h.assets[name]
	if !ok {
		return nil, ""
	}
	if version != h.version {
		// A page from another build (a rolling deploy): serve what we
		// have, but do not let it be cached under the other version's URL.
		return a, cacheRevalidate
	}
	return a, cacheImmutable
}

// notFound answers 404: a page for browsers, the API's JSON error otherwise.
func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	if strings.Contains(r.Header.Get("Accept"), "text/html") && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", cacheRevalidate)
		w.WriteHeader(http.StatusNotFound)
		if r.Method == http.MethodGet {
			_, _ = w.Write(h.notHTML.body)
		}
		return
	}
	writeError(w, http.StatusNotFound, "not_found", "No such page or route.")
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "message": msg})
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".json":
		return "application/json"
	default:
		return "text/plain; charset=utf-8"
	}
}
