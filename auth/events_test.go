package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/internal/testenv"
)

// eventsBody decodes a 200 /admin/events answer.
func eventsBody(t *testing.T, h http.HandlerFunc, query string) EventsPage {
	t.Helper()
	rec := get(t, h, query, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw))
	require.Contains(t, raw, "next_cursor", "next_cursor is always present (null on the last page)")
	require.NotEqual(t, "null", string(raw["events"]), "events must be [], never null")
	var page EventsPage
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
	return page
}

// allPages follows next_cursor to the end and returns every event seen.
func allPages(t *testing.T, h http.HandlerFunc, query string) []EventRow {
	t.Helper()
	var out []EventRow
	cursor := ""
	for range 10_000 {
		q := query
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		page := eventsBody(t, h, q)
		out = append(out, page.Events...)
		if page.NextCursor == nil {
			return out
		}
		cursor = *page.NextCursor
	}
	t.Fatal("pagination does not end")
	return nil
}

// requireNewestFirst checks the strict (at, id) descending order, which
// also rules out duplicates.
func requireNewestFirst(t *testing.T, evs []EventRow) {
	t.Helper()
	for i := 1; i < len(evs); i++ {
		a, b := evs[i-1], evs[i]
		require.True(t, b.At.Before(a.At) || b.At.Equal(a.At) && b.ID < a.ID,
			"event %d (%s, %d) not older than (%s, %d)", i, b.At, b.ID, a.At, a.ID)
	}
}

// eventsSource is what both the Postgres and the memory tests seed into.
type eventsSource struct {
	rep    *adminReports
	record func(AuditEvent)
}

func postgresEvents(t *testing.T) (eventsSource, *pgxpool.Pool) {
	pool := testenv.Postgres(t)
	a := NewPostgresAuditor(pool)
	return eventsSource{
		rep:    newTestAdminReports(pool, time.Now()),
		record: func(e AuditEvent) { require.NoError(t, a.Record(context.Background(), e)) },
	}, pool
}

func memoryEvents(t *testing.T) eventsSource {
	m := NewMemoryAuditor()
	return eventsSource{
		rep:    &adminReports{mem: m, now: time.Now, fail: testFail},
		record: func(e AuditEvent) { require.NoError(t, m.Record(context.Background(), e)) },
	}
}

// TestEventsFilters runs the same assertions on the Postgres reader and
// the memory-mode reader.
func TestEventsFilters(t *testing.T) {
	t.Parallel()
	for name, mk := range map[string]func(t *testing.T) eventsSource{
		"postgres": func(t *testing.T) eventsSource { s, _ := postgresEvents(t); return s },
		"memory":   memoryEvents,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := mk(t)
			alice, bob := newTestUUID(), newTestUUID()
			base := ts(t, "2026-03-01T00:00:00Z")
			// 3 events per minute for 20 minutes; every minute holds two
			// events at the same instant, so ties are broken by id.
			for i := range 20 {
				at := base.Add(time.Duration(i) * time.Minute)
				src.record(AuditEvent{At: at, Type: EventLoginSucceeded, UserID: alice, SessionID: "s-a",
					IP: "192.0.2.1", UserAgent: "=cmd", Detail: map[string]any{"method": "password"}})
				src.record(AuditEvent{At: at, Type: EventLoginFailed, UserID: bob,
					Detail: map[string]any{"method": "password", "reason": "invalid_credentials"}})
				src.record(AuditEvent{At: at.Add(time.Second), Type: EventLoginFailed,
					Detail: map[string]any{"method": "password", "reason": "throttled"}}) // unknown email: no user
			}
			h := src.rep.handleEvents

			first := eventsBody(t, h, "")
			require.Len(t, first.Events, 50, "default limit")
			require.NotNil(t, first.NextCursor)
			e := first.Events[0]
			require.Equal(t, base.Add(19*time.Minute+time.Second), e.At)
			require.Equal(t, "login_failed", e.Type)
			require.Nil(t, e.UserID)
			require.Nil(t, e.SessionID)
			require.JSONEq(t, `{"method":"password","reason":"throttled"}`, string(e.Detail))

			all := allPages(t, h, "limit=7")
			require.Len(t, all, 60)
			requireNewestFirst(t, all)
			require.Len(t, eventsBody(t, h, "limit=500").Events, 60)
			require.Nil(t, eventsBody(t, h, "limit=60").NextCursor, "an exactly full last page has no next")

			got := allPages(t, h, "user_id="+strings.ToUpper(alice)+"&limit=3")
			require.Len(t, got, 20)
			for _, e := range got {
				require.Equal(t, alice, *e.UserID)
				require.Equal(t, "s-a", *e.SessionID)
			}
			got = allPages(t, h, "type=login_failed&limit=9")
			require.Len(t, got, 40)
			got = allPages(t, h, "type=login_failed&user_id="+bob)
			require.Len(t, got, 20)
			// Half-open range: minutes 5..9 inclusive, 3 events each.
			got = allPages(t, h, "since=2026-03-01T00:05:00Z&until=2026-03-01T00:10:00Z&limit=4")
			require.Len(t, got, 15)
			require.Equal(t, base.Add(9*time.Minute+time.Second), got[0].At)
			require.Equal(t, base.Add(5*time.Minute), got[14].At)
			require.Empty(t, eventsBody(t, h, "user_id="+newTestUUID()).Events)

			// CSV: header, the next cursor in a header, formula cells defused.
			rec := get(t, h, "user_id="+alice+"&limit=2", "text/csv")
			require.Equal(t, http.StatusOK, rec.Code)
			require.NotEmpty(t, rec.Header().Get("X-Next-Cursor"))
			lines := strings.Split(strings.TrimSuffix(rec.Body.String(), "\n"), "\n")
			require.Len(t, lines, 3)
			require.Equal(t, "id,at,type,user_id,session_id,ip,user_agent,detail", lines[0])
			require.Contains(t, lines[1], ",2026-03-01T00:19:00Z,login_succeeded,"+alice+",s-a,192.0.2.1,'=cmd,")
			require.True(t, strings.HasSuffix(lines[1], `"{""method"":""password""}"`), lines[1])
		})
	}
}

func TestEventsParamErrors(t *testing.T) {
	t.Parallel()
	rep := newTestAdminReports(failingDB{t}, time.Now())
	for query, message := range map[string]string{
		"user_id=bob":                 "user_id must be a user id",
		"user_id=%27%20OR%201=1%20--": "user_id must be a user id",
		"type=login":                  "type must be one of signup, login_succeeded",
		"since=yesterday":             "since must be an RFC 3339 time",
		"until=2026-13-01T00:00:00Z":  "until must be an RFC 3339 time",
		"since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z": "since must be before until",
		"cursor=abc": "cursor is not one this server issued",
		"cursor=" + EventCursor{AtMicros: 1, ID: 0}.String(): "cursor is not one this server issued",
		"limit=0":   "limit must be a whole number from 1 to 500",
		"limit=ten": "limit must be a whole number from 1 to 500",
		"limit=-5":  "limit must be a whole number from 1 to 500",
	} {
		rec := get(t, rep.handleEvents, query, "text/csv")
		require.Equal(t, http.StatusBadRequest, rec.Code, query)
		var body map[string]string
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), query)
		require.Equal(t, "bad_request", body["error"])
		require.Contains(t, body["message"], message, query)
	}
	f, err := parseEventFilter(httptestRequest("limit=100000"))
	require.NoError(t, err)
	require.Equal(t, eventsMaxLimit, f.Limit, "a limit over 500 is clamped")
}

func httptestRequest(query string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "/admin/events?"+query, nil)
	return r
}

func TestEventCursorRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range []EventCursor{
		{AtMicros: ts(t, "2026-03-01T00:00:00.123456Z").UnixMicro(), ID: 1},
		{AtMicros: -62135596800000000, ID: 1<<63 - 1}, // year 1
	} {
		got, err := ParseEventCursor(c.String())
		require.NoError(t, err)
		require.Equal(t, c, got)
	}
}

// TestEventsPaginationConcurrentInserts pages through a log while other
// goroutines keep appending to it — at the head, and (as a transaction
// that started early and commits late would) in the middle of the range
// being paged. Every event that existed before the first page must be
// seen exactly once, in strict (at, id) order.
func TestEventsPaginationConcurrentInserts(t *testing.T) {
	t.Parallel()
	src, pool := postgresEvents(t)
	ctx := context.Background()
	base := ts(t, "2026-03-01T00:00:00Z")
	const seeded = 600
	// 600 events on 60 distinct instants: heavy ties.
	_, err := pool.Exec(ctx, `
INSERT INTO auth_events (at, type, detail)
SELECT $1::timestamptz + (g % 60) * interval '1 second', 'login_failed', '{"method":"password"}'
FROM generate_series(1, $2::int) g`, base, seeded)
	require.NoError(t, err)
	before := map[int64]bool{}
	rows, err := pool.Query(ctx, `SELECT id FROM auth_events`)
	require.NoError(t, err)
	for rows.Next() {
		var id int64
		require.NoError(t, rows.Scan(&id))
		before[id] = true
	}
	require.NoError(t, rows.Err())
	require.Len(t, before, seeded)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	inserted := make([]int, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Writers 0-1 append at the head; 2-3 land among the
				// seeded instants, ahead of and behind the cursor.
				at := base.Add(time.Duration(60+i) * time.Second)
				if w >= 2 {
					at = base.Add(time.Duration((i*7+w)%60) * time.Second)
				}
				if _, err := pool.Exec(ctx, `INSERT INTO auth_events (at, type) VALUES ($1, 'signup')`, at); err != nil {
					t.Errorf("insert: %v", err)
					return
				}
				inserted[w]++
			}
		})
	}
	var got []EventRow
	func() {
		defer func() { close(stop); wg.Wait() }()
		got = allPages(t, src.rep.handleEvents, "limit=11")
	}()
	requireNewestFirst(t, got)
	seen := map[int64]int{}
	for _, e := range got {
		seen[e.ID]++
	}
	for id := range before {
		require.Equal(t, 1, seen[id], "seeded event %d seen %d times", id, seen[id])
	}
	total := 0
	for _, n := range inserted {
		total += n
	}
	require.Positive(t, total, "the writers ran while pages were read")
	t.Logf("paged %d events (%d seeded) while %d were inserted", len(got), seeded, total)
}

// benchEventsSQL generates n audit events over ~15 days: 1,000 users,
// every type, logins with a method (a third of failures throttled).
const benchEventsSQL = `
INSERT INTO auth_events (at, type, user_id, session_id, ip, user_agent, detail)
SELECT $1::timestamptz - g * interval '13 seconds',
       (ARRAY['signup', 'login_succeeded', 'login_failed', 'session_created', 'session_revoked',
              'refresh_rotated', 'refresh_reuse', 'password_changed', 'identity_linked',
              'admin_action'])[1 + g % 10],
       ('00000000-0000-4000-8000-' || lpad(to_hex(1 + g % 1000), 12, '0'))::uuid,
       'sess' || (g % 5000), '198.51.100.' || (g % 250), 'bench',
       CASE WHEN g % 10 = 1 THEN jsonb_build_object('method', (ARRAY['password', 'google', 'refresh', 'service'])[1 + g % 4])
            WHEN g % 10 = 2 THEN jsonb_build_object('method', 'password', 'reason',
                CASE WHEN g % 3 = 0 THEN 'throttled' ELSE 'invalid_credentials' END)
            ELSE '{}'::jsonb END
FROM generate_series(1, $2::int) g`

// benchUser is one of the generated users (about 100 events each).
const benchUser = "00000000-0000-4000-8000-00000000002a"

func seedBenchEvents(t testing.TB, pool *pgxpool.Pool, now time.Time, n int) {
	t.Helper()
	ctx := context.Background()
	_, err := pool.Exec(ctx, benchEventsSQL, now, n)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `ANALYZE auth_events`)
	require.NoError(t, err)
}

// planNodes walks an EXPLAIN (FORMAT JSON) plan and returns each node as
// "Node Type" or "Node Type on index".
func planNodes(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) ([]string, string) {
	t.Helper()
	var raw []byte
	require.NoError(t, pool.QueryRow(context.Background(), "EXPLAIN (FORMAT JSON) "+sql, args...).Scan(&raw))
	var doc []struct {
		Plan map[string]any `json:"Plan"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	var nodes []string
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		s, _ := n["Node Type"].(string)
		if idx, ok := n["Index Name"].(string); ok {
			s += " on " + idx
		}
		nodes = append(nodes, s)
		kids, _ := n["Plans"].([]any)
		for _, k := range kids {
			walk(k.(map[string]any))
		}
	}
	walk(doc[0].Plan)
	var text strings.Builder
	rows, err := pool.Query(context.Background(), "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY ON) "+sql, args...)
	require.NoError(t, err)
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		text.WriteString(line + "\n")
	}
	require.NoError(t, rows.Err())
	return nodes, text.String()
}

// TestEventsQueryPlan checks on 100,000 generated events that every shape
// of the events query (and the logins report over a day) is answered from
// an index, never a sequential scan of the audit log.
func TestEventsQueryPlan(t *testing.T) {
	t.Parallel()
	pool := testenv.Postgres(t)
	now := ts(t, "2026-03-15T00:00:00Z")
	seedBenchEvents(t, pool, now, 100_000)
	cursor := &EventCursor{AtMicros: now.Add(-7 * 24 * time.Hour).UnixMicro(), ID: 1 << 40}
	for _, tc := range []struct {
		name  string
		f     EventFilter
		index []string // any of these
	}{
		{"first page", EventFilter{}, []string{"auth_events_at"}},
		{"deep page", EventFilter{After: cursor}, []string{"auth_events_at"}},
		{"user", EventFilter{UserID: benchUser}, []string{"auth_events_user_at"}},
		{"user, deep page", EventFilter{UserID: benchUser, After: cursor}, []string{"auth_events_user_at"}},
		{"type", EventFilter{Type: "admin_action", After: cursor}, []string{"auth_events_type_at", "auth_events_at"}},
		{"user and type", EventFilter{UserID: benchUser, Type: "login_succeeded", After: cursor}, []string{"auth_events_user_type_at"}},
		{"time range", EventFilter{Since: now.Add(-48 * time.Hour), Until: now.Add(-24 * time.Hour)}, []string{"auth_events_at"}},
	} {
		sql, args := eventsQuery(tc.f)
		nodes, text := planNodes(t, pool, sql, args...)
		t.Logf("%s:\n%s", tc.name, text)
		joined := strings.Join(nodes, " | ")
		require.NotContains(t, joined, "Seq Scan", "%s: %s", tc.name, joined)
		found := false
		for _, idx := range tc.index {
			found = found || strings.Contains(joined, " on "+idx)
		}
		require.True(t, found, "%s: plan %s uses none of %v", tc.name, joined, tc.index)
	}
	nodes, text := planNodes(t, pool, loginsReportSQL, now.Add(-24*time.Hour), now, time.Hour)
	t.Logf("logins report, 24 h:\n%s", text)
	require.Contains(t, strings.Join(nodes, " | "), " on auth_events_type_at")
	require.NotContains(t, strings.Join(nodes, " | "), "Seq Scan")
}

// BenchmarkEventsQuery times the events query shapes and the logins report
// on 100,000 generated events (figures for BENCHMARKS.md):
//
//	go test -run '^$' -bench 'EventsQuery|Reports' -benchtime 200x ./auth/
func BenchmarkEventsQuery(b *testing.B) {
	pool := testenv.Postgres(b)
	now := time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)
	seedBenchEvents(b, pool, now, 100_000)
	ctx := context.Background()
	cursor := &EventCursor{AtMicros: now.Add(-7 * 24 * time.Hour).UnixMicro(), ID: 1 << 40}
	for _, bc := range []struct {
		name string
		f    EventFilter
	}{
		{"page50", EventFilter{}},
		{"page500_deep", EventFilter{Limit: 500, After: cursor}},
		{"user", EventFilter{UserID: benchUser}},
		{"type_rare", EventFilter{Type: "admin_action", After: cursor}},
		{"user_type", EventFilter{UserID: benchUser, Type: "login_succeeded"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := queryEvents(ctx, pool, bc.f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, span := range []struct {
		name   string
		d      time.Duration
		bucket Bucket
	}{{"logins_24h_hour", 24 * time.Hour, BucketHour}, {"logins_15d_day", 15 * 24 * time.Hour, BucketDay}} {
		b.Run(span.name, func(b *testing.B) {
			r := ReportRange{Since: now.Add(-span.d), Until: now, Bucket: span.bucket}
			for b.Loop() {
				if _, err := queryLoginsReport(ctx, pool, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchSessionsSQL generates n sessions over ~15 days, a fifth of them
// revoked for a rotating reason.
const benchSessionsSQL = `
INSERT INTO sessions (id, user_id, kind, secret_hash, csrf_token, created_at, last_seen_at,
    expires_at, absolute_expires_at, revoked_at, revoke_reason)
SELECT 'bench' || g, $3::uuid, (ARRAY['browser', 'refresh', 'service'])[1 + g % 3],
       sha256(g::text::bytea), 'csrf',
       $1::timestamptz - g * interval '13 seconds', $1::timestamptz - g * interval '13 seconds',
       $1::timestamptz - g * interval '13 seconds' + interval '12 hours',
       $1::timestamptz - g * interval '13 seconds' + interval '168 hours',
       CASE WHEN g % 5 = 0 THEN $1::timestamptz - g * interval '13 seconds' + interval '1 hour' END,
       CASE WHEN g % 5 = 0 THEN (ARRAY['logout', 'logout_all', 'revoked', 'password_change', 'admin',
           'refresh_reuse', 'expired'])[1 + g % 7] END
FROM generate_series(1, $2::int) g`

// BenchmarkReports times the sessions and revocations reports on 100,000
// generated sessions.
func BenchmarkReports(b *testing.B) {
	pool := testenv.Postgres(b)
	ctx := context.Background()
	now := time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)
	uid := reportUser(b, pool)
	_, err := pool.Exec(ctx, benchSessionsSQL, now, 100_000, uid)
	require.NoError(b, err)
	_, err = pool.Exec(ctx, `ANALYZE sessions`)
	require.NoError(b, err)
	for _, bc := range []struct {
		name string
		r    ReportRange
	}{
		{"24h_hour", ReportRange{Since: now.Add(-24 * time.Hour), Until: now, Bucket: BucketHour}},
		{"15d_hour", ReportRange{Since: now.Add(-15 * 24 * time.Hour), Until: now, Bucket: BucketHour}},
		{"15d_day", ReportRange{Since: now.Add(-15 * 24 * time.Hour), Until: now, Bucket: BucketDay}},
	} {
		b.Run("sessions_"+bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := querySessionsReport(ctx, pool, bc.r); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("revocations_"+bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := queryRevocationsReport(ctx, pool, bc.r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestPostgresAuditorRecordAll checks the batched writer stores each event
// as Record would, in order, with the same user fill from the session.
func TestPostgresAuditorRecordAll(t *testing.T) {
	t.Parallel()
	pool := testenv.Postgres(t)
	a := NewPostgresAuditor(pool).(*pgAuditor)
	uid := newTestUUID()
	at := ts(t, "2026-03-01T10:00:00Z")
	evs := []AuditEvent{
		{At: at, Type: EventSessionRevoked, UserID: uid, SessionID: "s1", IP: "192.0.2.1", UserAgent: "ua",
			Detail: map[string]any{"reason": "logout_all"}},
		{At: at, Type: EventSessionRevoked, UserID: uid, SessionID: "s2", IP: "192.0.2.1", UserAgent: "ua"},
	}
	require.NoError(t, a.RecordAll(context.Background(), evs))
	rows, err := pool.Query(context.Background(),
		`SELECT type, user_id::text, session_id, ip, user_agent, detail::text FROM auth_events ORDER BY id`)
	require.NoError(t, err)
	type row struct{ typ, user, sess, ip, ua, detail string }
	var got []row
	for rows.Next() {
		var r row
		require.NoError(t, rows.Scan(&r.typ, &r.user, &r.sess, &r.ip, &r.ua, &r.detail))
		got = append(got, r)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []row{
		{"session_revoked", uid, "s1", "192.0.2.1", "ua", `{"reason": "logout_all"}`},
		{"session_revoked", uid, "s2", "192.0.2.1", "ua", `{}`},
	}, got)
}

// TestPostgresAuditorGroupCommit: Records that queue behind a round trip
// in flight are written together; one bad event among them fails alone and
// every other row is kept, each caller getting its own outcome.
func TestPostgresAuditorGroupCommit(t *testing.T) {
	t.Parallel()
	pool := testenv.Postgres(t)
	a := NewPostgresAuditor(pool).(*pgAuditor)
	uid := newTestUUID()
	at := ts(t, "2026-03-01T10:00:00Z")

	release := a.group.Hold() // as if a round trip were in flight: Records queue
	const n = 20
	errs := make(chan error, n)
	bad := make(chan error, 1)
	for i := range n {
		e := AuditEvent{At: at, Type: EventAdminAction, UserID: uid, SessionID: fmt.Sprintf("g%02d", i),
			Detail: map[string]any{"i": i}}
		go func() {
			if i == 7 {
				e.UserID = "not-a-uuid"
				bad <- a.Record(context.Background(), e)
				return
			}
			errs <- a.Record(context.Background(), e)
		}()
	}
	for a.group.Len() != n {
		time.Sleep(time.Millisecond)
	}
	release() // the in-flight round trip ends: this group goes out
	require.Error(t, <-bad, "the bad event fails")
	for range n - 1 {
		require.NoError(t, <-errs)
	}
	var count int
	require.NoError(t, pool.QueryRow(context.Background(),
		`SELECT count(*) FROM auth_events WHERE user_id = $1::uuid`, uid).Scan(&count))
	require.Equal(t, n-1, count, "every good event kept")

	// Plain concurrent Records, no manipulation: all land.
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, a.Record(context.Background(), AuditEvent{At: at, Type: EventAdminAction, UserID: uid, SessionID: fmt.Sprintf("c%02d", i)}))
		}()
	}
	wg.Wait()
	require.NoError(t, pool.QueryRow(context.Background(),
		`SELECT count(*) FROM auth_events WHERE user_id = $1::uuid`, uid).Scan(&count))
	require.Equal(t, n-1+50, count)
	require.True(t, a.group.Idle(), "no round running, nothing queued")
}
