package auth

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
)

// This file holds the HTTP side of the audit log and the reports:
// GET /admin/events and GET /admin/reports/{logins,sessions,revocations}.
// The admin middleware of routes.go has already checked the session and
// its admin scope; these handlers only read query parameters, run one
// query and answer JSON or, when the Accept header asks for it, CSV.

// adminReports serves the report routes. db is nil in memory mode: then
// /admin/events pages through the memory audit log (mem) so the admin page
// still shows what happened since start-up, and the reports answer 501 —
// API.md says they come from Postgres, and a second, in-memory
// implementation of the same SQL would be a second thing to keep right for
// a mode that keeps no history.
type adminReports struct {
	db   reportDB
	mem  memoryEventLog // used only when db is nil; nil → 501 as well
	now  func() time.Time
	fail func(w http.ResponseWriter, r *http.Request, err error)
}

// reportTimeout bounds one audit-log or report query: on their indexes
// they take milliseconds (TestReportsQueryPlan), and a hung Postgres must
// get 503 within API.md's 5 s rather than hold the request.
const reportTimeout = 4 * time.Second

// errReportsNeedPostgres is the memory-mode answer of every report route.
var errReportsNeedPostgres = &apiError{http.StatusNotImplemented, "not_implemented",
	"the audit log and reports need Postgres (set DATABASE_URL); this server runs in memory mode"}

// paramError turns a parse error wrapping ErrReportParam into a 400 whose
// message says what to fix; other errors pass through.
func paramError(err error) error {
	if errors.Is(err, ErrReportParam) {
		return errBadRequest(strings.TrimPrefix(err.Error(), ErrReportParam.Error()+": "))
	}
	return err
}

// handleEvents serves GET /admin/events?user_id=&type=&since=&until=&cursor=&limit=.
func (a *adminReports) handleEvents(w http.ResponseWriter, r *http.Request) {
	if a.db == nil && a.mem == nil {
		a.fail(w, r, errReportsNeedPostgres)
		return
	}
	f, err := parseEventFilter(r)
	if err != nil {
		a.fail(w, r, paramError(err))
		return
	}
	var page *EventsPage
	if a.db != nil {
		ctx, cancel := context.WithTimeout(r.Context(), reportTimeout)
		defer cancel()
		page, err = queryEvents(ctx, a.db, f)
	} else {
		page = pageMemoryEvents(a.mem.Events(), f)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if wantsCSV(r) {
		if page.NextCursor != nil {
			w.Header().Set("X-Next-Cursor", *page.NextCursor)
		}
		writeCSV(w, "events", []string{"id", "at", "type", "user_id", "session_id", "ip", "user_agent", "detail"},
			len(page.Events), func(i int) []string {
				e := page.Events[i]
				return []string{strconv.FormatInt(e.ID, 10), e.At.Format(time.RFC3339Nano), e.Type,
					reportStr(e.UserID), reportStr(e.SessionID), e.IP, e.UserAgent, string(e.Detail)}
			})
		return
	}
	writeReportJSON(w, page)
}

// parseEventFilter reads and validates the query of /admin/events.
func parseEventFilter(r *http.Request) (EventFilter, error) {
	q := r.URL.Query()
	var f EventFilter
	if v := q.Get("user_id"); v != "" {
		if !uuidShape(v) {
			return f, errReportParamf("user_id must be a user id (a UUID)")
		}
		f.UserID = strings.ToLower(v)
	}
	if v := q.Get("type"); v != "" {
		if !validEventType(v) {
			return f, errReportParamf("type must be one of " + strings.Join(eventTypes, ", "))
		}
		f.Type = v
	}
	s, u, err := parseTimeRange(q.Get("since"), q.Get("until"))
	if err != nil {
		return f, err
	}
	f.Since, f.Until = s.UTC().Truncate(time.Microsecond), u.UTC().Truncate(time.Microsecond)
	if v := q.Get("cursor"); v != "" {
		c, err := ParseEventCursor(v)
		if err != nil {
			return f, err
		}
		f.After = &c
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return f, errReportParamf("limit must be a whole number from 1 to " + strconv.Itoa(eventsMaxLimit))
		}
		f.Limit = min(n, eventsMaxLimit)
	}
	return f, nil
}

func errReportParamf(msg string) error { return fmt.Errorf("%w: %s", ErrReportParam, msg) }

// reportResponse is the JSON body of every report: API.md's rows plus the
// range actually covered, so a chart can lay out its axis.
type reportResponse[T any] struct {
	Rows   []T       `json:"rows"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
	Bucket Bucket    `json:"bucket"`
}

// handleLoginsReport serves GET /admin/reports/logins?since=&until=&bucket=.
func (a *adminReports) handleLoginsReport(w http.ResponseWriter, r *http.Request) {
	rg, ok := a.reportRange(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), reportTimeout)
	defer cancel()
	rows, err := queryLoginsReport(ctx, a.db, rg)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if wantsCSV(r) {
		writeCSV(w, "logins", []string{"bucket_start", "method", "result", "count"}, len(rows), func(i int) []string {
			x := rows[i]
			return []string{reportTime(x.BucketStart), x.Method, x.Result, strconv.FormatInt(x.Count, 10)}
		})
		return
	}
	writeReportJSON(w, reportResponse[LoginRow]{rows, rg.Since, rg.Until, rg.Bucket})
}

// handleSessionsReport serves GET /admin/reports/sessions?since=&until=&bucket=.
func (a *adminReports) handleSessionsReport(w http.ResponseWriter, r *http.Request) {
	rg, ok := a.reportRange(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), reportTimeout)
	defer cancel()
	rows, err := querySessionsReport(ctx, a.db, rg)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if wantsCSV(r) {
		writeCSV(w, "sessions", []string{"bucket_start", "kind", "created", "revoked", "active_at_end"}, len(rows), func(i int) []string {
			x := rows[i]
			return []string{reportTime(x.BucketStart), x.Kind, strconv.FormatInt(x.Created, 10),
				strconv.FormatInt(x.Revoked, 10), strconv.FormatInt(x.ActiveAtEnd, 10)}
		})
		return
	}
	writeReportJSON(w, reportResponse[SessionRow]{rows, rg.Since, rg.Until, rg.Bucket})
}

// handleRevocationsReport serves GET /admin/reports/revocations?since=&until=&bucket=.
func (a *adminReports) handleRevocationsReport(w http.ResponseWriter, r *http.Request) {
	rg, ok := a.reportRange(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), reportTimeout)
	defer cancel()
	rows, err := queryRevocationsReport(ctx, a.db, rg)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if wantsCSV(r) {
		writeCSV(w, "revocations", []string{"bucket_start", "reason", "count"}, len(rows), func(i int) []string {
			x := rows[i]
			return []string{reportTime(x.BucketStart), x.Reason, strconv.FormatInt(x.Count, 10)}
		})
		return
	}
	writeReportJSON(w, reportResponse[RevocationRow]{rows, rg.Since, rg.Until, rg.Bucket})
}

// reportRange answers the memory-mode and bad-parameter cases; ok is false
// when it has written the response.
func (a *adminReports) reportRange(w http.ResponseWriter, r *http.Request) (ReportRange, bool) {
	if a.db == nil {
		a.fail(w, r, errReportsNeedPostgres)
		return ReportRange{}, false
	}
	q := r.URL.Query()
	rg, err := parseReportRange(q.Get("since"), q.Get("until"), q.Get("bucket"), a.now())
	if err != nil {
		a.fail(w, r, paramError(err))
		return rg, false
	}
	return rg, true
}

// wantsCSV reports whether the Accept header prefers text/csv to JSON.
// Absent or */* means JSON; "text/csv" (or text/*) with a higher quality
// than application/json means CSV.
func wantsCSV(r *http.Request) bool {
	accept := r.Header.Values("Accept")
	if len(accept) == 0 {
		return false
	}
	csvQ, jsonQ := -1.0, -1.0
	for _, h := range accept {
		for _, part := range strings.Split(h, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := 1.0
			if v, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					q = f
				}
			}
			switch mt {
			case "text/csv":
				csvQ = max(csvQ, q)
			case "application/json":
				jsonQ = max(jsonQ, q)
			case "text/*":
				if csvQ < 0 {
					csvQ = q
				}
			case "*/*":
				if jsonQ < 0 {
					jsonQ = q
				}
			}
		}
	}
	return csvQ > 0 && csvQ > jsonQ
}

// writeReportJSON writes a 200 JSON body. Report data is admin-only and
// changes by the second: never cached.
func writeReportJSON(w http.ResponseWriter, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Add("Vary", "Accept")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}

// writeCSV writes a 200 CSV body: a header row, then n rows. Cells that a
// spreadsheet would run as a formula (user agents and details are chosen
// by clients) are prefixed with a quote (OWASP "CSV injection").
func writeCSV(w http.ResponseWriter, name string, header []string, n int, row func(int) []string) {
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
	h.Set("Cache-Control", "no-store")
	h.Add("Vary", "Accept")
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	_ = cw.Write(header)
	for i := 0; i < n; i++ {
		cells := row(i)
		for j, c := range cells {
			cells[j] = csvSafe(c)
		}
		_ = cw.Write(cells)
	}
	cw.Flush()
}

// csvSafe defuses a cell a spreadsheet would evaluate.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func reportTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func reportStr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// adminReportRoutes registers the audit-log and report routes behind the
// same guards as the other read-only admin routes (a session with the
// admin scope; a bearer JWT gets 401). They read the database the audit
// log is written to: Postgres when the auditor is the Postgres one, the
// memory log otherwise (see adminReports for what memory mode answers).
func (s *Server) adminReportRoutes(r chi.Router) {
	a := &adminReports{now: s.now, fail: s.writeError}
	switch al := s.auditor.(type) {
	case *pgAuditor:
		a.db = al.pool
	case memoryEventLog:
		a.mem = al
	}
	s.AdminGET(r, "/admin/events", a.handleEvents)
	s.AdminGET(r, "/admin/reports/logins", a.handleLoginsReport)
	s.AdminGET(r, "/admin/reports/sessions", a.handleSessionsReport)
	s.AdminGET(r, "/admin/reports/revocations", a.handleRevocationsReport)
}
