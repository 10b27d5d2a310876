package auth

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// This file computes the admin reports in SQL on Postgres (API.md, Admin
// routes). Every report groups by buckets aligned to UTC hours or days,
// omits empty buckets and returns rows in (bucket_start, label) order.
//
// A bucket is date_bin(step, ts, '2000-01-01T00:00:00Z'): with a UTC
// midnight as the origin and a step of 1 or 24 hours of absolute time, that
// is exactly date_trunc('hour'|'day', ts, 'UTC') — UTC has no DST — but it
// is plain arithmetic, where date_trunc with a time zone converts every row
// (about twice as slow on the 100,000-row benchmarks).

// ErrReportParam means a bad query parameter of /admin/events or
// /admin/reports/*; the handler answers 400 bad_request with the wrapped
// message, which says what to fix.
var ErrReportParam = errors.New("auth: bad report parameter")

// Bucket is the width of a report row.
type Bucket string

const (
	BucketHour Bucket = "hour"
	BucketDay  Bucket = "day"
)

// step is the bucket's width in absolute time; in UTC a day is always 24 h.
func (b Bucket) step() time.Duration {
	if b == BucketDay {
		return 24 * time.Hour
	}
	return time.Hour
}

// maxSpan is the widest range a report may cover with this bucket: enough
// for a month of hours or two years of days, while keeping a report a few
// hundred buckets (and its generate_series grid) small.
func (b Bucket) maxSpan() (time.Duration, string) {
	if b == BucketDay {
		return 731 * 24 * time.Hour, "731 days (2 years)"
	}
	return 31 * 24 * time.Hour, "744 hours (31 days)"
}

const (
	// reportDefaultSpan is API.md's default range: the last 24 h.
	reportDefaultSpan = 24 * time.Hour
)

// ReportRange is a validated report request: Since < Until, both at
// microsecond precision (what Postgres keeps), within Bucket's maxSpan.
// Rows cover [Since, Until): the first and last buckets are clipped to it.
type ReportRange struct {
	Since  time.Time
	Until  time.Time
	Bucket Bucket
}

// parseReportRange validates the since/until/bucket query parameters;
// now supplies API.md's default of the last 24 h.
func parseReportRange(since, until, bucket string, now time.Time) (ReportRange, error) {
	r := ReportRange{Bucket: BucketHour}
	switch bucket {
	case "", string(BucketHour):
	case string(BucketDay):
		r.Bucket = BucketDay
	default:
		return r, fmt.Errorf("%w: bucket must be hour or day", ErrReportParam)
	}
	s, u, err := parseTimeRange(since, until)
	if err != nil {
		return r, err
	}
	switch {
	case s.IsZero() && u.IsZero():
		u = now
		s = u.Add(-reportDefaultSpan)
	case u.IsZero():
		u = now
	case s.IsZero():
		s = u.Add(-reportDefaultSpan)
	}
	r.Since, r.Until = s.UTC().Truncate(time.Microsecond), u.UTC().Truncate(time.Microsecond)
	if !r.Since.Before(r.Until) {
		return r, fmt.Errorf("%w: since must be before until", ErrReportParam)
	}
	if span, limit := r.Bucket.maxSpan(); r.Until.Sub(r.Since) > span {
		return r, fmt.Errorf("%w: range too large for bucket=%s: at most %s", ErrReportParam, r.Bucket, limit)
	}
	return r, nil
}

// parseTimeRange parses optional RFC 3339 since/until (zero when absent)
// and refuses a reversed pair.
func parseTimeRange(since, until string) (s, u time.Time, err error) {
	parse := func(name, v string) (time.Time, error) {
		if v == "" {
			return time.Time{}, nil
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: %s must be an RFC 3339 time such as 2006-01-02T15:04:05Z", ErrReportParam, name)
		}
		return t, nil
	}
	if s, err = parse("since", since); err != nil {
		return
	}
	if u, err = parse("until", until); err != nil {
		return
	}
	if !s.IsZero() && !u.IsZero() && !s.Before(u) {
		return s, u, fmt.Errorf("%w: since must be before until", ErrReportParam)
	}
	return s, u, nil
}

// LoginRow counts login attempts of one method and result in one bucket.
type LoginRow struct {
	BucketStart time.Time `json:"bucket_start"`
	Method      string    `json:"method"`
	Result      string    `json:"result"`
	Count       int64     `json:"count"`
}

// SessionRow counts the sessions of one kind in one bucket: created and
// revoked within it, and alive at its end (the end of the range for the
// last, clipped bucket).
type SessionRow struct {
	BucketStart time.Time `json:"bucket_start"`
	Kind        string    `json:"kind"`
	Created     int64     `json:"created"`
	Revoked     int64     `json:"revoked"`
	ActiveAtEnd int64     `json:"active_at_end"`
}

// RevocationRow counts the sessions revoked for one reason in one bucket.
type RevocationRow struct {
	BucketStart time.Time `json:"bucket_start"`
	Reason      string    `json:"reason"`
	Count       int64     `json:"count"`
}

// loginsReportSQL counts login attempts from the audit log, matching the
// sessionhub_auth_logins_total{method,result} metric. The audit writer's
// contract (audit.go and its callers):
//
//   - login_succeeded / login_failed carry detail.method (password, google,
//     service, refresh) and detail.result (success, failure, throttled); a
//     login refused by a rate limit or backoff is login_failed with result
//     (or, equivalently, reason) 'throttled';
//   - a mobile refresh is the refresh method's login: refresh_rotated is a
//     success and refresh_reuse a failure (no separate login_* event is
//     written for them, so nothing is counted twice); a refresh refused
//     for any other reason (unknown token, ended session) is login_failed
//     with method 'refresh';
//   - a Google callback that links an identity to a logged-in user
//     (detail.mode = 'link') is not a login and is not counted;
//   - an event without a method (none is written so) counts as 'password',
//     the method that predates the field, rather than being dropped.
//
// "type IN (…) AND at range" is an index condition on auth_events_type_at.
const loginsReportSQL = `
SELECT date_bin($3::interval, at, '2000-01-01T00:00:00Z') AS bucket_start,
       CASE WHEN type IN ('refresh_rotated', 'refresh_reuse') THEN 'refresh'
            ELSE coalesce(detail->>'method', 'password') END AS method,
       CASE WHEN type IN ('login_succeeded', 'refresh_rotated') THEN 'success'
            WHEN detail->>'result' = 'throttled' OR detail->>'reason' = 'throttled' THEN 'throttled'
            ELSE 'failure' END AS result,
       count(*)
FROM auth_events
WHERE type IN ('login_succeeded', 'login_failed', 'refresh_rotated', 'refresh_reuse')
  AND at >= $1 AND at < $2
  AND coalesce(detail->>'mode', '') <> 'link'
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3`

// revocationsReportSQL counts sessions by the bucket of revoked_at; the
// range is an index condition on the partial index sessions_revoked_at.
const revocationsReportSQL = `
SELECT date_bin($3::interval, revoked_at, '2000-01-01T00:00:00Z') AS bucket_start, revoke_reason, count(*)
FROM sessions
WHERE revoked_at >= $1 AND revoked_at < $2
GROUP BY 1, 2
ORDER BY 1, 2`

// sessionsReportSQL computes created, revoked and active_at_end per
// (bucket, kind) in one pass over the sessions that matter, instead of one
// count per bucket:
//
//   - a session ends at least(revoked_at, expires_at, absolute_expires_at);
//     expires_at only slides forward and an expired session is never
//     revived, so its last stored value is when it expired (write-behind
//     may leave it a little early: see the README);
//   - active at a bucket's end hi = created before hi and not ended
//     before hi = (active at since) + created in [since, hi) − ended in
//     [since, hi), a running sum over a grid of every bucket and kind, so
//     quiet buckets still carry the sessions alive through them;
//   - a (bucket, kind) row whose three counts are zero is empty and omitted;
//   - only sessions that can count are read: created before until and
//     either live with expires_at >= since or revoked at or after since
//     (a session ending at or after since was revoked then or is unrevoked
//     with such an expiry). The two arms match the partial indexes
//     sessions_live_expires and sessions_revoked_at, so a recent range
//     does not read the whole table.
const sessionsReportSQL = `
WITH s AS (
    SELECT kind, created_at, revoked_at,
           least(coalesce(revoked_at, 'infinity'::timestamptz), expires_at, absolute_expires_at) AS end_at
    FROM sessions
    WHERE created_at < $2
      AND ((revoked_at IS NULL AND expires_at >= $1) OR revoked_at >= $1)
),
base AS (
    SELECT kind, count(*) AS n FROM s WHERE created_at < $1 AND end_at >= $1 GROUP BY kind
),
ev AS (
    SELECT date_bin($3::interval, created_at, '2000-01-01T00:00:00Z') AS bucket_start, kind, 1 AS created, 0 AS revoked, 1 AS delta
    FROM s WHERE created_at >= $1
    UNION ALL
    SELECT date_bin($3::interval, revoked_at, '2000-01-01T00:00:00Z'), kind, 0, 1, 0
    FROM s WHERE revoked_at >= $1 AND revoked_at < $2
    UNION ALL
    SELECT date_bin($3::interval, end_at, '2000-01-01T00:00:00Z'), kind, 0, 0, -1
    FROM s WHERE end_at >= $1 AND end_at < $2
),
agg AS (
    SELECT bucket_start, kind, sum(created) AS created, sum(revoked) AS revoked, sum(delta) AS delta
    FROM ev GROUP BY 1, 2
),
grid AS (
    SELECT g AS bucket_start, k.kind
    FROM generate_series(date_bin($3::interval, $1::timestamptz, '2000-01-01T00:00:00Z'),
                         $2::timestamptz - interval '1 microsecond', $3::interval) AS g
    CROSS JOIN (VALUES ('browser'), ('refresh'), ('service')) AS k (kind)
),
r AS (
    SELECT grid.bucket_start, grid.kind,
           coalesce(agg.created, 0)::bigint AS created,
           coalesce(agg.revoked, 0)::bigint AS revoked,
           (coalesce(base.n, 0) + sum(coalesce(agg.delta, 0))
               OVER (PARTITION BY grid.kind ORDER BY grid.bucket_start))::bigint AS active_at_end
    FROM grid
    LEFT JOIN agg USING (bucket_start, kind)
    LEFT JOIN base USING (kind)
)
SELECT bucket_start, kind, created, revoked, active_at_end
FROM r
WHERE created > 0 OR revoked > 0 OR active_at_end > 0
ORDER BY bucket_start, kind`

// queryLoginsReport runs loginsReportSQL over r.
func queryLoginsReport(ctx context.Context, db reportDB, r ReportRange) ([]LoginRow, error) {
	rows, err := db.Query(ctx, loginsReportSQL, r.Since, r.Until, r.Bucket.step())
	if err != nil {
		return nil, fmt.Errorf("auth: logins report: %w", err)
	}
	defer rows.Close()
	out := []LoginRow{}
	for rows.Next() {
		var x LoginRow
		if err := rows.Scan(&x.BucketStart, &x.Method, &x.Result, &x.Count); err != nil {
			return nil, fmt.Errorf("auth: logins report: %w", err)
		}
		x.BucketStart = x.BucketStart.UTC()
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth: logins report: %w", err)
	}
	return out, nil
}

// querySessionsReport runs sessionsReportSQL over r.
func querySessionsReport(ctx context.Context, db reportDB, r ReportRange) ([]SessionRow, error) {
	rows, err := db.Query(ctx, sessionsReportSQL, r.Since, r.Until, r.Bucket.step())
	if err != nil {
		return nil, fmt.Errorf("auth: sessions report: %w", err)
	}
	defer rows.Close()
	out := []SessionRow{}
	for rows.Next() {
		var x SessionRow
		if err := rows.Scan(&x.BucketStart, &x.Kind, &x.Created, &x.Revoked, &x.ActiveAtEnd); err != nil {
			return nil, fmt.Errorf("auth: sessions report: %w", err)
		}
		x.BucketStart = x.BucketStart.UTC()
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth: sessions report: %w", err)
	}
	return out, nil
}

// queryRevocationsReport runs revocationsReportSQL over r.
func queryRevocationsReport(ctx context.Context, db reportDB, r ReportRange) ([]RevocationRow, error) {
	rows, err := db.Query(ctx, revocationsReportSQL, r.Since, r.Until, r.Bucket.step())
	if err != nil {
		return nil, fmt.Errorf("auth: revocations report: %w", err)
	}
	defer rows.Close()
	out := []RevocationRow{}
	for rows.Next() {
		var x RevocationRow
		if err := rows.Scan(&x.BucketStart, &x.Reason, &x.Count); err != nil {
			return nil, fmt.Errorf("auth: revocations report: %w", err)
		}
		x.BucketStart = x.BucketStart.UTC()
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth: revocations report: %w", err)
	}
	return out, nil
}
