package auth

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// This file reads the audit log (auth_events) for GET /admin/events. The
// writer of the log is audit.go; this side only pages through it.

// reportDB is what the audit-log reader and the reports need from
// Postgres; *pgxpool.Pool satisfies it.
type reportDB interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Event types of API.md, the values auth_events.type may hold.
var eventTypes = []string{
	"signup", "login_succeeded", "login_failed", "session_created",
	"session_revoked", "refresh_rotated", "refresh_reuse", "password_changed",
	"identity_linked", "admin_action",
}

func validEventType(t string) bool {
	for _, v := range eventTypes {
		if v == t {
			return true
		}
	}
	return false
}

const (
	// eventsDefaultLimit is API.md's default page size.
	eventsDefaultLimit = 50
	// eventsMaxLimit is API.md's largest page; larger asks are clamped so
	// one request never pulls an unbounded slice of a million-row table.
	eventsMaxLimit = 500
)

// EventRow is one audit event as GET /admin/events returns it. UserID and
// SessionID are nil (JSON null) for events that name no user or session,
// such as a failed login for an unknown email.
type EventRow struct {
	ID        int64           `json:"id"`
	At        time.Time       `json:"at"`
	Type      string          `json:"type"`
	UserID    *string         `json:"user_id"`
	SessionID *string         `json:"session_id"`
	IP        string          `json:"ip"`
	UserAgent string          `json:"user_agent"`
	Detail    json.RawMessage `json:"detail"`
}

// EventFilter selects a page of the audit log. Zero fields do not filter.
// The range is half-open: Since <= at < Until.
type EventFilter struct {
	UserID string // a UUID
	Type   string // one of eventTypes
	Since  time.Time
	Until  time.Time
	// After continues a previous page: only events strictly older than it
	// in (at, id) order.
	After *EventCursor
	Limit int // 1..eventsMaxLimit; 0 means eventsDefaultLimit
}

// EventsPage is one page of the audit log, newest first. NextCursor is nil
// on the last page.
type EventsPage struct {
	Events     []EventRow `json:"events"`
	NextCursor *string    `json:"next_cursor"`
}

// EventCursor is the keyset position of the last event of a page. (at, id)
// is a total order (id is unique), and an event never moves in it, so
// paging by "strictly older than the cursor" never repeats nor skips an
// event that existed when the first page was read, however many events are
// inserted meanwhile; newer ones simply land before the cursor.
type EventCursor struct {
	AtMicros int64 // Postgres keeps microseconds: the cursor must too
	ID       int64
}

// cursorBytes is the size of an encoded cursor: two big-endian int64s.
const cursorBytes = 16

// String encodes the cursor as opaque, URL-safe base64.
func (c EventCursor) String() string {
	var b [cursorBytes]byte
	binary.BigEndian.PutUint64(b[:8], uint64(c.AtMicros))
	binary.BigEndian.PutUint64(b[8:], uint64(c.ID))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ParseEventCursor decodes what EventCursor.String produced.
func ParseEventCursor(s string) (EventCursor, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != cursorBytes {
		return EventCursor{}, fmt.Errorf("%w: cursor is not one this server issued", ErrReportParam)
	}
	c := EventCursor{
		AtMicros: int64(binary.BigEndian.Uint64(b[:8])),
		ID:       int64(binary.BigEndian.Uint64(b[8:])),
	}
	if c.ID <= 0 {
		return EventCursor{}, fmt.Errorf("%w: cursor is not one this server issued", ErrReportParam)
	}
	return c, nil
}

// The events query is assembled from these pieces so that each filter
// present becomes a plain equality or range the planner can match to an
// index: auth_events_at (at DESC, id DESC) with no filter,
// auth_events_user_at with user_id, auth_events_type_at with type. A
// generic "($1 IS NULL OR user_id = $1)" form would defeat that. The
// keyset condition is a row comparison, which Postgres uses as an index
// condition on (at, id).
const (
	eventsSelectSQL = `SELECT id, at, type, user_id::text, session_id, ip, user_agent, detail
FROM auth_events`
	eventsOrderSQL = `
ORDER BY at DESC, id DESC
LIMIT `
)

// eventsQuery returns the SQL and arguments for f; the limit asked of the
// database is one more than the page so that the last page is recognised
// without a second query.
func eventsQuery(f EventFilter) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.UserID != "" {
		add("user_id = ?::uuid", f.UserID)
	}
	if f.Type != "" {
		add("type = ?", f.Type)
	}
	if !f.Since.IsZero() {
		add("at >= ?", f.Since)
	}
	if !f.Until.IsZero() {
		add("at < ?", f.Until)
	}
	if f.After != nil {
		args = append(args, time.UnixMicro(f.After.AtMicros).UTC(), f.After.ID)
		where = append(where, fmt.Sprintf("(at, id) < ($%d, $%d)", len(args)-1, len(args)))
	}
	q := eventsSelectSQL
	if len(where) > 0 {
		q += "\nWHERE " + strings.Join(where, " AND ")
	}
	return q + eventsOrderSQL + strconv.Itoa(f.limit()+1), args
}

func (f EventFilter) limit() int {
	switch {
	case f.Limit <= 0:
		return eventsDefaultLimit
	case f.Limit > eventsMaxLimit:
		return eventsMaxLimit
	}
	return f.Limit
}

// queryEvents reads one page of the audit log, newest first.
func queryEvents(ctx context.Context, db reportDB, f EventFilter) (*EventsPage, error) {
	q, args := eventsQuery(f)
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("auth: query events: %w", err)
	}
	defer rows.Close()
	page := &EventsPage{Events: []EventRow{}}
	for rows.Next() {
		var e EventRow
		var detail []byte
		if err := rows.Scan(&e.ID, &e.At, &e.Type, &e.UserID, &e.SessionID, &e.IP, &e.UserAgent, &detail); err != nil {
			return nil, fmt.Errorf("auth: scan event: %w", err)
		}
		e.At = e.At.UTC()
		// jsonb prints `{"a": 1}`; compact it so JSON and CSV bodies match
		// the memory mode byte for byte.
		var buf bytes.Buffer
		if json.Compact(&buf, detail) == nil {
			detail = buf.Bytes()
		}
		e.Detail = json.RawMessage(detail)
		page.Events = append(page.Events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth: query events: %w", err)
	}
	if n := f.limit(); len(page.Events) > n {
		page.Events = page.Events[:n]
		last := page.Events[n-1]
		c := EventCursor{AtMicros: last.At.UnixMicro(), ID: last.ID}.String()
		page.NextCursor = &c
	}
	return page, nil
}

// memoryEventLog is the memory-mode audit log; *MemoryAuditor satisfies it.
type memoryEventLog interface {
	Events() []AuditEvent
}

// pageMemoryEvents applies f to the memory-mode log with the same order,
// cursor and page size as queryEvents, so the admin page works in the
// embedded mode too (over whatever the bounded log still holds).
func pageMemoryEvents(all []AuditEvent, f EventFilter) *EventsPage {
	rows := make([]EventRow, 0, len(all))
	for _, e := range all {
		at := e.At.UTC().Truncate(time.Microsecond)
		switch {
		case f.UserID != "" && !strings.EqualFold(e.UserID, f.UserID),
			f.Type != "" && string(e.Type) != f.Type,
			!f.Since.IsZero() && at.Before(f.Since),
			!f.Until.IsZero() && !at.Before(f.Until),
			f.After != nil && !eventBefore(at.UnixMicro(), e.ID, *f.After):
			continue
		}
		detail, err := json.Marshal(e.Detail)
		if err != nil || e.Detail == nil {
			detail = []byte("{}")
		}
		rows = append(rows, EventRow{ID: e.ID, At: at, Type: string(e.Type), UserID: nullable(e.UserID),
			SessionID: nullable(e.SessionID), IP: e.IP, UserAgent: e.UserAgent, Detail: detail})
	}
	slices.SortFunc(rows, func(a, b EventRow) int {
		if c := b.At.Compare(a.At); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	page := &EventsPage{Events: rows}
	if n := f.limit(); len(rows) > n {
		page.Events = rows[:n:n]
		c := EventCursor{AtMicros: rows[n-1].At.UnixMicro(), ID: rows[n-1].ID}.String()
		page.NextCursor = &c
	}
	return page
}

// eventBefore reports whether (atMicros, id) comes strictly after c in the
// newest-first order, i.e. is older than the cursor.
func eventBefore(atMicros, id int64, c EventCursor) bool {
	return atMicros < c.AtMicros || atMicros == c.AtMicros && id < c.ID
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
