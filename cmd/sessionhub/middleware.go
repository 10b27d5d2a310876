package main

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionhub/sessionhub/auth"
	"github.com/sessionhub/sessionhub/sessions"
)

// maxBody is API.md's request body limit: larger bodies get 413 too_large.
const maxBody = 64 << 10

// maxHeaders is API.md's limit on a request's line and headers: past it,
// limitHeaders answers 431 with the JSON error body.
const maxHeaders = 16 << 10

// maxHeaderBytes is net/http's own limit, the backstop for what
// limitHeaders never sees: net/http answers 431 in plain text past it (plus
// its 4 KiB of slack) and holds no more than that per connection.
const maxHeaderBytes = 64 << 10

// readHeaderTimeout disconnects a client that has not sent its headers
// within 10 s (API.md, slowloris).
const readHeaderTimeout = 10 * time.Second

// requestID gives every request an id: a well-formed incoming X-Request-Id
// (from a proxy) or a fresh one. It is stored under chi's key, so
// middleware.GetReqID finds it in every package, and echoed in the response.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = sessions.RandomString(12)
		}
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), middleware.RequestIDKey, id)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// validRequestID accepts short ids of safe characters only, so a client
// cannot put anything else into our logs through the header.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// limitHeaders answers 431 when the request line and headers exceed 16 KiB.
// net/http's MaxHeaderBytes cannot be the limit: it allows 4 KiB of slack,
// answers in plain text, and does not apply to a kept-alive connection's
// later requests the same way.
func limitHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if headerSize(r) > maxHeaders {
			w.Header().Set("Connection", "close")
			writeJSONError(w, http.StatusRequestHeaderFieldsTooLarge, "headers_too_large", "request headers over 16 KiB")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// headerSize is the size of the request line and headers as sent on the
// wire (HTTP/1.1 framing: "Name: value\r\n").
func headerSize(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2
	n += len("Host: ") + len(r.Host) + 2
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	return n + 2
}

// limitBody answers 413 too_large for a declared body over maxBody and caps
// the reading of any other body, so no handler reads more than that.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBody {
			writeJSONError(w, http.StatusRequestEntityTooLarge, "too_large", "request body over 64 KiB")
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		next.ServeHTTP(w, r)
	})
}

// httpMetrics holds sessionhub_http_request_duration_seconds.
type httpMetrics struct {
	duration *prometheus.HistogramVec
	// observers caches duration's child per label set (obsKey →
	// prometheus.Observer): the routes, methods and codes are few, and
	// the cache spares every request the vector's label hashing and lock.
	observers sync.Map
}

type obsKey struct {
	route, method string
	code          int
}

func (m *httpMetrics) observer(route, method string, code int) prometheus.Observer {
	k := obsKey{route, method, code}
	if o, ok := m.observers.Load(k); ok {
		return o.(prometheus.Observer)
	}
	o := m.duration.WithLabelValues(route, method, strconv.Itoa(code))
	m.observers.Store(k, o)
	return o
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "sessionhub_http_request_duration_seconds",
		Help: "Time to answer an HTTP request, by route pattern, method and status code.",
		// From 1 ms (a session read from Redis) to 10 s (argon2 under load
		// or a 503 after the store timeouts).
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route", "method", "code"})}
	if err := reg.Register(m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

// observe writes one access log line per request and records its duration
// by route pattern. It logs the route pattern, never the raw path or query
// string, and only a session's public id: the one a bearer JWT proved once
// verified (GET /ws, POST /api/publish), else the one presented in the
// cookie or a Session authorization.
func (m *httpMetrics) observe(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &statusRecorder{ResponseWriter: w}
			var verified *verifiedSession
			if mayCarryJWT(r) {
				verified = &verifiedSession{}
				r = r.WithContext(context.WithValue(r.Context(), verifiedSessionKey{}, verified))
			}
			next.ServeHTTP(rec, r)
			d := time.Since(start)
			status := rec.result()
			route := routePattern(r)
			method := methodLabel(r.Method)
			m.observer(route, method, status).Observe(d.Seconds())

			level := slog.LevelInfo
			if route == "/healthz" || route == "/readyz" {
				level = slog.LevelDebug // probes every few seconds would drown the log
			}
			attrs := []slog.Attr{
				slog.String("method", method),
				slog.String("route", route),
				slog.Int("status", status),
				slog.Float64("duration_ms", float64(d.Microseconds())/1000),
				slog.Int("bytes", rec.bytes),
				slog.String("request_id", middleware.GetReqID(r.Context())),
			}
			id := presentedSessionID(r)
			if verified != nil && verified.id != "" {
				id = verified.id
			}
			if id != "" {
				attrs = append(attrs, slog.String("session_id", id))
			}
			log.LogAttrs(r.Context(), level, "http request", attrs...)
		})
	}
}

// statusRecorder remembers the status and size of a response for the
// access log and the duration metric. It passes Flush and Hijack through
// (Unwrap serves http.ResponseController), and counts a hijacked
// connection that wrote no status as 101: the hub writes its 101 on the
// raw connection, together with the welcome frame.
type statusRecorder struct {
	http.ResponseWriter
	status   int
	bytes    int
	hijacked bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		s.status = code // other 1xx are interim: the final status follows
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(p)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) Flush() { _ = http.NewResponseController(s.ResponseWriter).Flush() }

func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err == nil {
		s.hijacked = true
	}
	return c, rw, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// result is the status the client saw.
func (s *statusRecorder) result() int {
	switch {
	case s.status != 0:
		return s.status
	case s.hijacked:
		return http.StatusSwitchingProtocols
	}
	return http.StatusOK
}

// routePattern is the matched chi pattern ("/sessions/{id}"), or
// "unmatched", so the metric's label set stays bounded.
func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			return p
		}
	}
	return "unmatched"
}

// methodLabel bounds the method label to the standard methods.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// verifiedSession is where the JWT verifier (hubVerifier) leaves the
// session id of a token it accepted, for the request's access log line. It
// is written and read on the request's goroutine: the hub verifies before
// its handler returns.
type verifiedSession struct{ id string }

type verifiedSessionKey struct{}

// noteVerifiedSession records id, the sid of a verified JWT, for the
// access log line of the request whose context is ctx.
func noteVerifiedSession(ctx context.Context, id string) {
	if v, ok := ctx.Value(verifiedSessionKey{}).(*verifiedSession); ok {
		v.id = id
	}
}

// mayCarryJWT reports whether r may carry a bearer JWT (an Authorization
// other than Session, or a WebSocket subprotocol): only those requests pay
// for the slot noteVerifiedSession fills.
func mayCarryJWT(r *http.Request) bool {
	if a := r.Header.Get("Authorization"); a != "" && !strings.HasPrefix(a, "Session ") {
		return true
	}
	return r.Header.Get("Sec-WebSocket-Protocol") != ""
}

// presentedSessionID returns the public id of the session token the request
// carries (cookie or "Authorization: Session"), when it has the shape of
// one. It is what the client presented, not proof of a live session.
func presentedSessionID(r *http.Request) string {
	raw, ok := sessionCookie(r.Header["Cookie"])
	if !ok {
		if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Session "); ok {
			raw = v
		}
	}
	id, _, _ := strings.Cut(raw, ".")
	if !sessions.ValidID(id) {
		return ""
	}
	return id
}

// sessionCookie finds the session cookie's value in Cookie header lines as
// r.Cookie(auth.CookieName) does (first well-formed one; quotes stripped),
// without parsing every cookie into a slice: it runs on every request.
func sessionCookie(lines []string) (string, bool) {
	for _, line := range lines {
		for part := range strings.SplitSeq(line, ";") {
			name, val, _ := strings.Cut(strings.TrimSpace(part), "=")
			if name != auth.CookieName {
				continue
			}
			if len(val) > 1 && val[0] == '"' && val[len(val)-1] == '"' {
				val = val[1 : len(val)-1]
			}
			if validCookieValue(val) {
				return val, true
			}
		}
	}
	return "", false
}

// validCookieValue is net/http's test of a cookie value's bytes.
func validCookieValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return false
		}
	}
	return true
}

// writeJSONError writes API.md's error body.
func writeJSONError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]string{"error": code, "message": message})
}
