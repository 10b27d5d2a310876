package auth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/internal/testenv"
	"github.com/sessionhub/sessionhub/sessions"
)

// ts parses an RFC 3339 time or fails the test.
func ts(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return v
}

// reportUser inserts a user row and returns its id.
func reportUser(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	id := newTestUUID()
	_, err := pool.Exec(context.Background(),
		`INSERT INTO users (id, email) VALUES ($1, $2)`, id, "u-"+id+"@example.com")
	require.NoError(t, err)
	return id
}

// newTestUUID is a random v4 UUID in canonical form.
func newTestUUID() string {
	b := sha256.Sum256([]byte(sessions.RandomString(16)))
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hexd = "0123456789abcdef"
	var out []byte
	for i := 0; i < 16; i++ {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexd[b[i]>>4], hexd[b[i]&15])
	}
	return string(out)
}

// seedSession is one row of the sessions table with explicit times.
type seedSession struct {
	kind     string
	created  string
	expires  string // sliding expiry as last synced
	absolute string
	revoked  string // "" → live
	reason   string
}

func insertSession(t testing.TB, pool *pgxpool.Pool, userID string, s seedSession) string {
	t.Helper()
	tok := sessions.NewToken()
	var revokedAt *time.Time
	var reason *string
	if s.revoked != "" {
		r := ts(t, s.revoked)
		revokedAt, reason = &r, &s.reason
	}
	abs := s.absolute
	if abs == "" {
		abs = s.expires
	}
	_, err := pool.Exec(context.Background(), `
INSERT INTO sessions (id, user_id, kind, secret_hash, csrf_token, created_at, last_seen_at,
    expires_at, absolute_expires_at, revoked_at, revoke_reason)
VALUES ($1, $2, $3, $4, 'csrf', $5, $5, $6, $7, $8, $9)`,
		tok.ID, userID, s.kind, tok.Hash(), ts(t, s.created), ts(t, s.expires), ts(t, abs), revokedAt, reason)
	require.NoError(t, err)
	return tok.ID
}

// seedEvent is one audit event written through the real Postgres auditor,
// so the reader is tested against what the writer stores.
type seedEvent struct {
	at     string
	typ    EventType
	detail map[string]any
}

func insertEvents(t testing.TB, pool *pgxpool.Pool, userID string, evs []seedEvent) {
	t.Helper()
	a := NewPostgresAuditor(pool)
	for _, e := range evs {
		require.NoError(t, a.Record(context.Background(), AuditEvent{
			At: ts(t, e.at), Type: e.typ, UserID: userID, IP: "192.0.2.1", UserAgent: "test", Detail: e.detail,
		}))
	}
}

// seedReports writes the known data set the report tests assert on: logins
// on 1, 2 and 4 March 2026 (none on the 3rd), one the evening before, and
// eight sessions of every kind and fate around them.
func seedReports(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	uid := reportUser(t, pool)
	pw := func(kv ...string) map[string]any {
		d := map[string]any{"method": "password"}
		for i := 0; i+1 < len(kv); i += 2 {
			d[kv[i]] = kv[i+1]
		}
		return d
	}
	refresh := map[string]any{"method": "refresh"}
	// Both spellings of a throttled login count: detail.result (what the
	// login handler writes) and detail.reason.
	insertEvents(t, pool, uid, []seedEvent{
		{"2026-02-28T23:59:59Z", EventLoginSucceeded, pw("result", "success", "kind", "browser")},
		{"2026-03-01T10:05:00Z", EventLoginSucceeded, pw("result", "success")},
		{"2026-03-01T10:20:00Z", EventLoginSucceeded, pw()},
		{"2026-03-01T10:59:59.999999Z", EventLoginFailed, pw("result", "failure", "email", "x@example.com")},
		{"2026-03-01T11:00:00Z", EventLoginFailed, pw("result", "throttled")},
		{"2026-03-01T11:30:00Z", EventLoginSucceeded, map[string]any{"method": "google", "result": "success"}},
		{"2026-03-02T00:00:00Z", EventRefreshRotated, refresh},
		{"2026-03-02T09:15:00Z", EventRefreshReuse, refresh},
		{"2026-03-02T23:59:59Z", EventLoginSucceeded, map[string]any{"method": "service", "result": "success"}},
		{"2026-03-04T12:00:00Z", EventLoginFailed, pw("result", "throttled")},
		{"2026-03-04T12:00:00Z", EventLoginFailed, pw("reason", "throttled")},
		// Not logins: never counted by the logins report.
		{"2026-03-01T10:05:00Z", EventSessionCreated, map[string]any{"method": "password", "kind": "browser"}},
		{"2026-03-01T10:04:00Z", EventSignup, pw()},
		{"2026-03-01T11:45:00Z", EventLoginFailed, map[string]any{"method": "google", "result": "failure", "mode": "link", "reason": "identity_taken"}},
		{"2026-03-04T12:00:00Z", EventSessionRevoked, map[string]any{"reason": "refresh_reuse"}},
	})
	for _, s := range []seedSession{
		{kind: "browser", created: "2026-03-01T10:05:00Z", expires: "2026-03-01T22:05:00Z", absolute: "2026-03-08T10:05:00Z", revoked: "2026-03-01T12:30:00Z", reason: "logout"},  // S1
		{kind: "browser", created: "2026-03-01T10:20:00Z", expires: "2026-03-03T00:00:00Z", absolute: "2026-03-08T10:20:00Z"},                                                     // S2 idles out
		{kind: "refresh", created: "2026-03-02T00:00:00Z", expires: "2026-03-05T00:00:00Z", revoked: "2026-03-04T12:00:00Z", reason: "refresh_reuse"},                             // S3
		{kind: "service", created: "2026-03-02T23:59:59Z", expires: "2026-04-01T00:00:00Z"},                                                                                       // S4
		{kind: "browser", created: "2026-02-28T20:00:00Z", expires: "2026-03-01T08:00:00Z", revoked: "2026-03-01T01:00:00Z", reason: "admin"},                                     // S5
		{kind: "browser", created: "2026-02-28T12:00:00Z", expires: "2026-03-01T00:30:00Z"},                                                                                       // S6
		{kind: "refresh", created: "2026-03-04T13:00:00Z", expires: "2026-03-10T00:00:00Z", revoked: "2026-03-04T13:30:00Z", reason: "password_change"},                           // S7
		{kind: "browser", created: "2026-03-01T11:00:00Z", expires: "2026-03-01T11:30:00Z", absolute: "2026-03-08T11:00:00Z", revoked: "2026-03-01T14:00:00Z", reason: "expired"}, // S8 swept late
	} {
		insertSession(t, pool, uid, s)
	}
}

// reportFixture is a Postgres schema holding seedReports and the report
// handlers on it, with the clock stopped at now.
type reportFixture struct {
	pool *pgxpool.Pool
	rep  *adminReports
}

func newReportFixture(t *testing.T, now time.Time) *reportFixture {
	t.Helper()
	pool := testenv.Postgres(t)
	seedReports(t, pool)
	return &reportFixture{pool: pool, rep: newTestAdminReports(pool, now)}
}

// newTestAdminReports builds the handlers with the package's error mapping.
func newTestAdminReports(db reportDB, now time.Time) *adminReports {
	return &adminReports{db: db, now: func() time.Time { return now }, fail: testFail}
}

func testFail(w http.ResponseWriter, _ *http.Request, err error) {
	status, code, msg, _ := httpError(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "message": msg})
}

// get calls handler h with the query and optional Accept header.
func get(t *testing.T, h http.HandlerFunc, query, accept string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/admin/x?"+query, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	h(rec, req)
	return rec
}

// rowsJSON decodes {"rows": [...]} into a slice of generic rows, checking
// that rows is an array (never null).
func rowsJSON(t *testing.T, rec *httptest.ResponseRecorder) []map[string]any {
	t.Helper()
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var body struct {
		Rows *[]map[string]any `json:"rows"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	require.NotNil(t, body.Rows, "rows must be [], never null")
	return *body.Rows
}

func row(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		v := kv[i+1]
		if n, ok := v.(int); ok {
			v = float64(n)
		}
		m[kv[i].(string)] = v
	}
	return m
}

func TestReportLogins(t *testing.T) {
	t.Parallel()
	fx := newReportFixture(t, ts(t, "2026-03-01T12:00:30Z"))
	h := fx.rep.handleLoginsReport

	t.Run("hour", func(t *testing.T) {
		got := rowsJSON(t, get(t, h, "since=2026-03-01T00:00:00Z&until=2026-03-05T00:00:00Z&bucket=hour", ""))
		require.Equal(t, []map[string]any{
			row("bucket_start", "2026-03-01T10:00:00Z", "method", "password", "result", "failure", "count", 1),
			row("bucket_start", "2026-03-01T10:00:00Z", "method", "password", "result", "success", "count", 2),
			row("bucket_start", "2026-03-01T11:00:00Z", "method", "google", "result", "success", "count", 1),
			row("bucket_start", "2026-03-01T11:00:00Z", "method", "password", "result", "throttled", "count", 1),
			row("bucket_start", "2026-03-02T00:00:00Z", "method", "refresh", "result", "success", "count", 1),
			row("bucket_start", "2026-03-02T09:00:00Z", "method", "refresh", "result", "failure", "count", 1),
			row("bucket_start", "2026-03-02T23:00:00Z", "method", "service", "result", "success", "count", 1),
			row("bucket_start", "2026-03-04T12:00:00Z", "method", "password", "result", "throttled", "count", 2),
		}, got)
	})
	t.Run("day", func(t *testing.T) {
		got := rowsJSON(t, get(t, h, "since=2026-03-01T00:00:00Z&until=2026-03-05T00:00:00Z&bucket=day", ""))
		require.Equal(t, []map[string]any{
			row("bucket_start", "2026-03-01T00:00:00Z", "method", "google", "result", "success", "count", 1),
			row("bucket_start", "2026-03-01T00:00:00Z", "method", "password", "result", "failure", "count", 1),
			row("bucket_start", "2026-03-01T00:00:00Z", "method", "password", "result", "success", "count", 2),
			row("bucket_start", "2026-03-01T00:00:00Z", "method", "password", "result", "throttled", "count", 1),
			row("bucket_start", "2026-03-02T00:00:00Z", "method", "refresh", "result", "failure", "count", 1),
			row("bucket_start", "2026-03-02T00:00:00Z", "method", "refresh", "result", "success", "count", 1),
			row("bucket_start", "2026-03-02T00:00:00Z", "method", "service", "result", "success", "count", 1),
			row("bucket_start", "2026-03-04T00:00:00Z", "method", "password", "result", "throttled", "count", 2),
		}, got)
	})
	t.Run("half-open range in another offset", func(t *testing.T) {
		// 10:30Z..00:00Z next day, written as +02:00: the 10:59:59.999999
		// failure is in, the midnight refresh is out; buckets stay UTC.
		got := rowsJSON(t, get(t, h, "since=2026-03-01T12:30:00%2B02:00&until=2026-03-02T02:00:00%2B02:00", ""))
		require.Equal(t, []map[string]any{
			row("bucket_start", "2026-03-01T10:00:00Z", "method", "password", "result", "failure", "count", 1),
			row("bucket_start", "2026-03-01T11:00:00Z", "method", "google", "result", "success", "count", 1),
			row("bucket_start", "2026-03-01T11:00:00Z", "method", "password", "result", "throttled", "count", 1),
		}, got)
	})
	t.Run("default is the last 24 h", func(t *testing.T) {
		// now = 03-01T12:00:30Z: from 02-28T12:00:30Z on.
		got := rowsJSON(t, get(t, h, "", ""))
		require.Equal(t, []map[string]any{
			row("bucket_start", "2026-02-28T23:00:00Z", "method", "password", "result", "success", "count", 1),
			row("bucket_start", "2026-03-01T10:00:00Z", "method", "password", "result", "failure", "count", 1),
			row("bucket_start", "2026-03-01T10:00:00Z", "method", "password", "result", "success", "count", 2),
			row("bucket_start", "2026-03-01T11:00:00Z", "method", "google", "result", "success", "count", 1),
			row("bucket_start", "2026-03-01T11:00:00Z", "method", "password", "result", "throttled", "count", 1),
		}, got)
	})
	t.Run("empty range is [] not null", func(t *testing.T) {
		got := rowsJSON(t, get(t, h, "since=2026-03-03T00:00:00Z&until=2026-03-04T00:00:00Z", ""))
		require.Empty(t, got)
		rec := get(t, h, "since=2026-03-03T00:00:00Z&until=2026-03-04T00:00:00Z", "text/csv")
		require.Equal(t, "bucket_start,method,result,count\n", rec.Body.String())
	})
	t.Run("csv", func(t *testing.T) {
		rec := get(t, h, "since=2026-03-01T00:00:00Z&until=2026-03-05T00:00:00Z&bucket=day", "text/csv")
		require.Equal(t, http.StatusOK, rec.Code)
		require.Equal(t, "text/csv; charset=utf-8", rec.Header().Get("Content-Type"))
		require.Equal(t, "bucket_start,method,result,count\n"+
			"2026-03-01T00:00:00Z,google,success,1\n"+
			"2026-03-01T00:00:00Z,password,failure,1\n"+
			"2026-03-01T00:00:00Z,password,success,2\n"+
			"2026-03-01T00:00:00Z,password,throttled,1\n"+
			"2026-03-02T00:00:00Z,refresh,failure,1\n"+
			"2026-03-02T00:00:00Z,refresh,success,1\n"+
			"2026-03-02T00:00:00Z,service,success,1\n"+
			"2026-03-04T00:00:00Z,password,throttled,2\n", rec.Body.String())
	})
}

func TestReportSessions(t *testing.T) {
	t.Parallel()
	fx := newReportFixture(t, ts(t, "2026-03-05T00:00:00Z"))
	h := fx.rep.handleSessionsReport
	sr := func(bucket, kind string, created, revoked, active int) map[string]any {
		return row("bucket_start", bucket, "kind", kind, "created", created, "revoked", revoked, "active_at_end", active)
	}

	t.Run("day", func(t *testing.T) {
		got := rowsJSON(t, get(t, h, "since=2026-03-01T00:00:00Z&until=2026-03-05T00:00:00Z&bucket=day", ""))
		require.Equal(t, []map[string]any{
			sr("2026-03-01T00:00:00Z", "browser", 3, 3, 1), // S1 S2 S8 in; S1 S5 S8 revoked; S6 idled out
			sr("2026-03-02T00:00:00Z", "browser", 0, 0, 1), // S2 still alive: a quiet bucket is not empty
			sr("2026-03-02T00:00:00Z", "refresh", 1, 0, 1),
			sr("2026-03-02T00:00:00Z", "service", 1, 0, 1),
			sr("2026-03-03T00:00:00Z", "refresh", 0, 0, 1), // S2 expired at 03-03T00:00: browser row empty
			sr("2026-03-03T00:00:00Z", "service", 0, 0, 1),
			sr("2026-03-04T00:00:00Z", "refresh", 1, 2, 0),
			sr("2026-03-04T00:00:00Z", "service", 0, 0, 1),
		}, got)
	})
	t.Run("hour, clipped range", func(t *testing.T) {
		got := rowsJSON(t, get(t, h, "since=2026-03-01T10:30:00Z&until=2026-03-01T12:45:00Z", ""))
		require.Equal(t, []map[string]any{
			sr("2026-03-01T10:00:00Z", "browser", 0, 0, 2), // S1 S2 alive at since, nothing after 10:30
			sr("2026-03-01T11:00:00Z", "browser", 1, 0, 2), // S8 in at 11:00, idled out 11:30
			sr("2026-03-01T12:00:00Z", "browser", 0, 1, 1), // S1 logged out 12:30
		}, got)
	})
	t.Run("csv", func(t *testing.T) {
		rec := get(t, h, "since=2026-03-01T10:30:00Z&until=2026-03-01T12:45:00Z", "text/csv, application/json;q=0.5")
		require.Equal(t, "bucket_start,kind,created,revoked,active_at_end\n"+
			"2026-03-01T10:00:00Z,browser,0,0,2\n"+
			"2026-03-01T11:00:00Z,browser,1,0,2\n"+
			"2026-03-01T12:00:00Z,browser,0,1,1\n", rec.Body.String())
	})
}

func TestReportRevocations(t *testing.T) {
	t.Parallel()
	fx := newReportFixture(t, ts(t, "2026-03-05T00:00:00Z"))
	h := fx.rep.handleRevocationsReport
	rr := func(bucket, reason string, n int) map[string]any {
		return row("bucket_start", bucket, "reason", reason, "count", n)
	}
	got := rowsJSON(t, get(t, h, "since=2026-03-01T00:00:00Z&until=2026-03-05T00:00:00Z&bucket=day", ""))
	require.Equal(t, []map[string]any{
		rr("2026-03-01T00:00:00Z", "admin", 1),
		rr("2026-03-01T00:00:00Z", "expired", 1),
		rr("2026-03-01T00:00:00Z", "logout", 1),
		rr("2026-03-04T00:00:00Z", "password_change", 1),
		rr("2026-03-04T00:00:00Z", "refresh_reuse", 1),
	}, got)
	got = rowsJSON(t, get(t, h, "since=2026-03-01T00:00:00Z&until=2026-03-05T00:00:00Z", ""))
	require.Equal(t, []map[string]any{
		rr("2026-03-01T01:00:00Z", "admin", 1),
		rr("2026-03-01T12:00:00Z", "logout", 1),
		rr("2026-03-01T14:00:00Z", "expired", 1),
		rr("2026-03-04T12:00:00Z", "refresh_reuse", 1),
		rr("2026-03-04T13:00:00Z", "password_change", 1),
	}, got)
	rec := get(t, h, "since=2026-03-01T00:00:00Z&until=2026-03-05T00:00:00Z&bucket=day", "text/csv")
	require.Equal(t, "bucket_start,reason,count\n"+
		"2026-03-01T00:00:00Z,admin,1\n"+
		"2026-03-01T00:00:00Z,expired,1\n"+
		"2026-03-01T00:00:00Z,logout,1\n"+
		"2026-03-04T00:00:00Z,password_change,1\n"+
		"2026-03-04T00:00:00Z,refresh_reuse,1\n", rec.Body.String())
}

// TestReportsPostgresHung: on a Postgres that accepts and never answers,
// the audit log and every report answer 503 unavailable within API.md's
// 5 s instead of holding the request as long as the client waits.
func TestReportsPostgresHung(t *testing.T) {
	t.Parallel()
	// The 5 s is the query timeout's; the watchdog below only tells an
	// answer from a hang, with room for a loaded CI machine.
	require.Less(t, reportTimeout, 5*time.Second)
	rep := newTestAdminReports(hungPool(t), time.Now())
	for name, h := range map[string]http.HandlerFunc{
		"events":      rep.handleEvents,
		"logins":      rep.handleLoginsReport,
		"sessions":    rep.handleSessionsReport,
		"revocations": rep.handleRevocationsReport,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			done := make(chan *httptest.ResponseRecorder, 1)
			go func() { done <- get(t, h, "", "") }()
			select {
			case rec := <-done:
				require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
				require.Contains(t, rec.Body.String(), `"error":"unavailable"`)
			case <-time.After(30 * time.Second):
				t.Fatalf("%s on a hung Postgres never answered", name)
			}
		})
	}
}

// TestReportRangeErrors needs no database: every case is refused before
// the query.
func TestReportRangeErrors(t *testing.T) {
	t.Parallel()
	rep := newTestAdminReports(failingDB{t}, ts(t, "2026-03-05T00:00:00Z"))
	for _, tc := range []struct {
		query, message string
	}{
		{"bucket=week", "bucket must be hour or day"},
		{"since=yesterday", "since must be an RFC 3339 time"},
		{"until=2026-03-05", "until must be an RFC 3339 time"},
		{"since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z", "since must be before until"},
		{"since=2026-03-01T00:00:00Z&until=2026-03-01T00:00:00Z", "since must be before until"},
		{"since=2026-03-06T00:00:00Z", "since must be before until"}, // until defaults to now
		{"since=2026-01-01T00:00:00Z&until=2026-02-01T00:00:01Z", "range too large for bucket=hour: at most 744 hours (31 days)"},
		{"since=2024-01-01T00:00:00Z&until=2026-01-02T00:00:01Z&bucket=day", "range too large for bucket=day: at most 731 days (2 years)"},
	} {
		for name, h := range map[string]http.HandlerFunc{
			"logins": rep.handleLoginsReport, "sessions": rep.handleSessionsReport, "revocations": rep.handleRevocationsReport,
		} {
			// Errors stay JSON even when CSV was asked for.
			rec := get(t, h, tc.query, "text/csv")
			require.Equal(t, http.StatusBadRequest, rec.Code, "%s %s", name, tc.query)
			require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			var body map[string]string
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			require.Equal(t, "bad_request", body["error"])
			require.Contains(t, body["message"], tc.message, "%s %s", name, tc.query)
		}
	}
	// The widest ranges allowed are accepted by validation.
	for _, tc := range []struct{ since, until, bucket string }{
		{"2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", ""},
		{"2024-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "day"},
	} {
		_, err := parseReportRange(tc.since, tc.until, tc.bucket, time.Now())
		require.NoError(t, err)
	}
}

func TestReportsMemoryMode(t *testing.T) {
	t.Parallel()
	rep := &adminReports{now: time.Now, fail: testFail}
	for _, h := range []http.HandlerFunc{rep.handleLoginsReport, rep.handleSessionsReport,
		rep.handleRevocationsReport, rep.handleEvents} {
		rec := get(t, h, "", "")
		require.Equal(t, http.StatusNotImplemented, rec.Code)
		require.Contains(t, rec.Body.String(), "DATABASE_URL")
	}
}

func TestWantsCSV(t *testing.T) {
	t.Parallel()
	for accept, want := range map[string]bool{
		"":                                 false,
		"*/*":                              false,
		"application/json":                 false,
		"text/csv":                         true,
		"text/csv; charset=utf-8":          true,
		"application/json, text/csv":       false, // equal quality: JSON, the default
		"text/csv, application/json;q=0.9": true,
		"application/json;q=0.1, text/*":   true,
		"text/csv;q=0":                     false,
		"text/html, */*;q=0.8":             false,
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		require.Equal(t, want, wantsCSV(req), "Accept: %q", accept)
	}
}

func TestCSVSafe(t *testing.T) {
	t.Parallel()
	require.Equal(t, "'=HYPERLINK(\"x\")", csvSafe(`=HYPERLINK("x")`))
	require.Equal(t, "'+1", csvSafe("+1"))
	require.Equal(t, "'@SUM(A1)", csvSafe("@SUM(A1)"))
	require.Equal(t, "Mozilla/5.0", csvSafe("Mozilla/5.0"))
	require.Equal(t, "", csvSafe(""))
}

// failingDB fails the test if a query reaches it.
type failingDB struct{ t *testing.T }

func (f failingDB) Query(_ context.Context, sql string, _ ...any) (pgx.Rows, error) {
	f.t.Errorf("unexpected query: %s", strings.TrimSpace(sql))
	return nil, context.Canceled
}

// TestReportsQueryPlan checks on 100,000 generated sessions that the
// sessions and revocations reports over a recent day read through the
// partial indexes, not the whole table.
func TestReportsQueryPlan(t *testing.T) {
	t.Parallel()
	pool := testenv.Postgres(t)
	ctx := context.Background()
	now := ts(t, "2026-03-15T00:00:00Z")
	_, err := pool.Exec(ctx, benchSessionsSQL, now, 100_000, reportUser(t, pool))
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `ANALYZE sessions`)
	require.NoError(t, err)
	since := now.Add(-24 * time.Hour)

	nodes, text := planNodes(t, pool, sessionsReportSQL, since, now, time.Hour)
	t.Logf("sessions report, 24 h by hour:\n%s", text)
	joined := strings.Join(nodes, " | ")
	require.NotContains(t, joined, "Seq Scan on sessions")
	require.Contains(t, joined, " on sessions_live_expires")
	require.Contains(t, joined, " on sessions_revoked_at")

	nodes, text = planNodes(t, pool, revocationsReportSQL, since, now, time.Hour)
	t.Logf("revocations report, 24 h by hour:\n%s", text)
	joined = strings.Join(nodes, " | ")
	require.NotContains(t, joined, "Seq Scan")
	require.Contains(t, joined, " on sessions_revoked_at")

	// The seeded figures are consistent: per kind, active at the end of
	// each bucket = active at the end of the previous one + created −
	// ended, and nothing is negative.
	rows, err := querySessionsReport(ctx, pool, ReportRange{Since: since, Until: now, Bucket: BucketHour})
	require.NoError(t, err)
	require.NotEmpty(t, rows)
	for _, r := range rows {
		require.GreaterOrEqual(t, r.ActiveAtEnd, int64(0))
	}
}

// TestSessionsReportMatchesBruteForce compares the sessions report with a
// direct count, bucket by bucket, over random sessions and unaligned
// ranges.
func TestSessionsReportMatchesBruteForce(t *testing.T) {
	t.Parallel()
	pool := testenv.Postgres(t)
	uid := reportUser(t, pool)
	base := ts(t, "2026-03-01T00:00:00Z")
	rng := rand.New(rand.NewPCG(7, 9))
	type sess struct {
		kind                      string
		created, expires, revoked time.Time
	}
	kinds := []string{"browser", "refresh", "service"}
	minute := func(max int) time.Duration { return time.Duration(rng.IntN(max)) * time.Minute }
	var all []sess
	for range 300 {
		s := sess{kind: kinds[rng.IntN(3)], created: base.Add(minute(5 * 24 * 60))}
		s.expires = s.created.Add(time.Minute + minute(36*60))
		seed := seedSession{kind: s.kind, created: s.created.Format(time.RFC3339), expires: s.expires.Format(time.RFC3339),
			absolute: s.created.Add(168 * time.Hour).Format(time.RFC3339)}
		if rng.IntN(3) == 0 {
			s.revoked = s.created.Add(minute(48 * 60))
			seed.revoked, seed.reason = s.revoked.Format(time.RFC3339), "logout"
		}
		insertSession(t, pool, uid, seed)
		all = append(all, s)
	}
	in := func(x, lo, hi time.Time) bool { return !x.IsZero() && !x.Before(lo) && x.Before(hi) }
	for _, r := range []ReportRange{
		{Since: base.Add(90 * time.Minute), Until: base.Add(50*time.Hour + 17*time.Minute), Bucket: BucketHour},
		{Since: base.Add(-time.Hour), Until: base.Add(7 * 24 * time.Hour), Bucket: BucketDay},
		{Since: base.Add(30*time.Hour + 5*time.Minute), Until: base.Add(100*time.Hour + 59*time.Minute), Bucket: BucketDay},
	} {
		step := time.Hour
		if r.Bucket == BucketDay {
			step = 24 * time.Hour
		}
		var want []SessionRow
		for b := r.Since.Truncate(step); b.Before(r.Until); b = b.Add(step) {
			lo, hi := laterOf(b, r.Since), earlierOf(b.Add(step), r.Until)
			for _, k := range kinds {
				row := SessionRow{BucketStart: b, Kind: k}
				for _, s := range all {
					if s.kind != k {
						continue
					}
					end := s.expires
					if !s.revoked.IsZero() && s.revoked.Before(end) {
						end = s.revoked
					}
					if in(s.created, lo, hi) {
						row.Created++
					}
					if in(s.revoked, lo, hi) {
						row.Revoked++
					}
					if s.created.Before(hi) && !end.Before(hi) {
						row.ActiveAtEnd++
					}
				}
				if row.Created+row.Revoked+row.ActiveAtEnd > 0 {
					want = append(want, row)
				}
			}
		}
		got, err := querySessionsReport(context.Background(), pool, r)
		require.NoError(t, err)
		require.Equal(t, want, got, "range %s .. %s by %s", r.Since, r.Until, r.Bucket)
	}
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlierOf(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
