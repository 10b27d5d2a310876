package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionhub/sessionhub/internal/groupcommit"
)

// EventType is an auth_events.type value (API.md, Admin routes).
type EventType string

const (
	EventSignup          EventType = "signup"
	EventLoginSucceeded  EventType = "login_succeeded"
	EventLoginFailed     EventType = "login_failed"
	EventSessionCreated  EventType = "session_created"
	EventSessionRevoked  EventType = "session_revoked"
	EventRefreshRotated  EventType = "refresh_rotated"
	EventRefreshReuse    EventType = "refresh_reuse"
	EventPasswordChanged EventType = "password_changed"
	EventIdentityLinked  EventType = "identity_linked"
	EventAdminAction     EventType = "admin_action"
)

// AuditEvent is one row of the append-only audit log. SessionID is the
// public session id; no field ever holds a secret. Detail must be a JSON
// object's worth of values (nil is {}). An event with a SessionID but no
// UserID is recorded with that session's user by the Postgres auditor.
type AuditEvent struct {
	ID        int64
	At        time.Time
	Type      EventType
	UserID    string // "" → NULL
	SessionID string // "" → NULL
	IP        string
	UserAgent string
	Detail    map[string]any
}

// Auditor appends audit events. Implementations are the Postgres table
// auth_events (NewPostgresAuditor) and a memory log (NewMemoryAuditor).
type Auditor interface {
	Record(ctx context.Context, e AuditEvent) error
}

// pgAuditor writes auth_events rows. Concurrent Records are group-committed:
// while one INSERT round trip is in flight the events that arrive queue,
// and the next round trip writes all of them in one transaction (a burst of
// admin revocations records two events each). A lone event waits for
// nobody.
type pgAuditor struct {
	pool  *pgxpool.Pool
	group *groupcommit.Group[*auditCall]
}

// auditCall is one Record waiting for its group.
type auditCall struct {
	e      AuditEvent
	detail []byte
	done   chan error
}

// maxAuditGroup bounds the events of one group-committed round trip.
const maxAuditGroup = 200

// NewPostgresAuditor returns an Auditor on the auth_events table.
func NewPostgresAuditor(pool *pgxpool.Pool) Auditor {
	a := &pgAuditor{pool: pool}
	a.group = groupcommit.New(groupcommit.Config[*auditCall]{Max: maxAuditGroup, Commit: a.flush})
	return a
}

// sqlInsertEvent fills a missing user id from the event's session (revoked
// sessions included), so that an event about a session always belongs to
// its user: a refresh_reuse replayed after the session was already revoked,
// a refresh refused because its session ended. COALESCE evaluates the
// subquery only when $3 is empty, and it is a primary-key read.
const sqlInsertEvent = `
INSERT INTO auth_events (at, type, user_id, session_id, ip, user_agent, detail)
VALUES ($1, $2,
        coalesce(nullif($3, '')::uuid, (SELECT s.user_id FROM sessions s WHERE s.id = nullif($4, ''))),
        nullif($4, ''), $5, $6, $7)`

// Record appends e, group-committed with concurrent Records; it returns
// once e's row is committed (or failed). ctx's values are not used: the
// round trip is shared, bounded by pgTimeout.
func (a *pgAuditor) Record(_ context.Context, e AuditEvent) error {
	b, err := marshalDetail(e.Detail)
	if err != nil {
		return err
	}
	c := &auditCall{e: e, detail: b, done: make(chan error, 1)}
	a.group.Add(context.Background(), c)
	return <-c.done
}

// flush writes one group; its answers run with the next group's round trip
// started. When Postgres refuses the group's statement (a bad event), each
// of its events is written alone, so one bad event never loses the others;
// an unreachable or hung Postgres fails the group at once, never one
// pgTimeout per member in a row.
func (a *pgAuditor) flush(_ context.Context, group []*auditCall) (after func()) {
	err := a.insert(group)
	return func() {
		var refused *pgconn.PgError
		if len(group) > 1 && errors.As(err, &refused) {
			for _, c := range group {
				c.done <- a.insert([]*auditCall{c})
			}
			return
		}
		for _, c := range group {
			c.done <- err
		}
	}
}

// insert writes calls' events in one round trip and one transaction.
func (a *pgAuditor) insert(calls []*auditCall) error {
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	if len(calls) == 1 {
		e := calls[0].e
		if _, err := a.pool.Exec(ctx, sqlInsertEvent, e.At, string(e.Type), e.UserID, e.SessionID, e.IP, e.UserAgent, calls[0].detail); err != nil {
			return pgWrap("audit", err)
		}
		return nil
	}
	var batch pgx.Batch
	for _, c := range calls {
		e := c.e
		batch.Queue(sqlInsertEvent, e.At, string(e.Type), e.UserID, e.SessionID, e.IP, e.UserAgent, c.detail)
	}
	if err := a.pool.SendBatch(ctx, &batch).Close(); err != nil {
		return pgWrap("audit", err)
	}
	return nil
}

// RecordAll appends events in one round trip (one pgx batch), so that a
// global logout of N sessions does not cost N sequential INSERTs.
func (a *pgAuditor) RecordAll(ctx context.Context, events []AuditEvent) error {
	var batch pgx.Batch
	for _, e := range events {
		b, err := marshalDetail(e.Detail)
		if err != nil {
			return err
		}
		batch.Queue(sqlInsertEvent, e.At, string(e.Type), e.UserID, e.SessionID, e.IP, e.UserAgent, b)
	}
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	if err := a.pool.SendBatch(ctx, &batch).Close(); err != nil {
		return pgWrap("audit", err)
	}
	return nil
}

// marshalDetail encodes an event's detail; nil is {}.
func marshalDetail(detail map[string]any) ([]byte, error) {
	if detail == nil {
		detail = map[string]any{}
	}
	b, err := json.Marshal(detail)
	if err != nil {
		return nil, fmt.Errorf("auth: audit detail: %w", err)
	}
	return b, nil
}

// batchAuditor is an Auditor that can append several events in one round
// trip (the Postgres one); Server.auditAll uses it when it is there.
type batchAuditor interface {
	RecordAll(ctx context.Context, events []AuditEvent) error
}

// MemoryAuditor keeps events in memory (embedded mode and tests).
type MemoryAuditor struct {
	mu     sync.Mutex
	events []AuditEvent
	next   int64
}

// maxMemoryEvents bounds the embedded mode's log; older events are dropped
// (the embedded mode keeps nothing across restarts anyway).
const maxMemoryEvents = 100_000

// NewMemoryAuditor returns an empty in-memory audit log.
func NewMemoryAuditor() *MemoryAuditor { return &MemoryAuditor{} }

// Record appends e.
func (m *MemoryAuditor) Record(_ context.Context, e AuditEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.events) >= maxMemoryEvents {
		m.events = append(m.events[:0], m.events[len(m.events)/2:]...)
	}
	m.next++
	e.ID = m.next
	e.Detail = maps.Clone(e.Detail)
	m.events = append(m.events, e)
	return nil
}

// Events returns a copy of the log, oldest first.
func (m *MemoryAuditor) Events() []AuditEvent {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]AuditEvent(nil), m.events...)
}

// audit records e, filling At; a failure is logged, never returned: the
// user-visible outcome already happened and must not turn into an error.
func (s *Server) audit(ctx context.Context, e AuditEvent) {
	if e.At.IsZero() {
		e.At = s.now().UTC()
	}
	if err := s.auditor.Record(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("audit event lost", slog.String("type", string(e.Type)),
			slog.String("session_id", e.SessionID), slog.Any("err", err))
	}
}

// auditAll records events like audit, in one round trip when the auditor
// can batch.
func (s *Server) auditAll(ctx context.Context, events []AuditEvent) {
	b, ok := s.auditor.(batchAuditor)
	if !ok || len(events) < 2 {
		for _, e := range events {
			s.audit(ctx, e)
		}
		return
	}
	at := s.now().UTC()
	for i := range events {
		if events[i].At.IsZero() {
			events[i].At = at
		}
	}
	if err := b.RecordAll(context.WithoutCancel(ctx), events); err != nil {
		s.log.Error("audit events lost", slog.String("type", string(events[0].Type)),
			slog.Int("count", len(events)), slog.Any("err", err))
	}
}
