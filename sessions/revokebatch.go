package sessions

import (
	"context"
	"fmt"
	"time"

	"github.com/sessionhub/sessionhub/internal/groupcommit"
)

// maxRevokeBatch bounds one group-committed revocation statement, so that a
// burst's first callers are not held behind thousands of rows.
const maxRevokeBatch = 500

// RevokeItem is one session to revoke in Durable.RevokeMany.
type RevokeItem struct {
	ID     string
	Reason Reason
	At     time.Time
}

// revokeCall is one Revoke waiting for its group's commit.
type revokeCall struct {
	ctx       context.Context
	item      RevokeItem
	requestID string
	done      chan struct{} // closed when sess/err are set
	sess      *Session
	err       error
}

// newRevokeGroup group-commits concurrent Revoke calls: while one durable
// revocation statement is in flight, the calls that arrive queue, and the
// next statement takes all of them (one UPDATE, one commit, then one hot
// round trip for their deletes and events). A lone call waits for nobody.
// A call whose ctx ended before its statement is refused, not sent.
func newRevokeGroup(s *Store) *groupcommit.Group[*revokeCall] {
	return groupcommit.New(groupcommit.Config[*revokeCall]{
		Max: maxRevokeBatch, Commit: s.commitRevocations,
		Context: func(c *revokeCall) context.Context { return c.ctx },
		Abandon: func(c *revokeCall, err error) {
			c.err = fmt.Errorf("sessions: revoke: %w", err)
			close(c.done)
		},
	})
}

// revokeGrouped queues c and returns its result. It never reports success
// for a revocation that was not committed, nor failure for one that was: a
// caller whose ctx ends while still queued is withdrawn, but once its
// statement is sent it waits for the outcome (bounded by DurableTimeout and
// HotTimeout).
func (s *Store) revokeGrouped(ctx context.Context, c *revokeCall) (*Session, error) {
	if !s.revokes.Add(ctx, c) {
		select {
		case <-c.done:
		case <-ctx.Done():
			if s.revokes.Withdraw(c) {
				return nil, fmt.Errorf("sessions: revoke: %w", ctx.Err())
			}
			<-c.done
		}
	}
	return c.sess, c.err
}

// commitRevocations runs one group's durable statement and returns the
// rest of its work: the hot deletes and the events, which run while the
// next group's statement is already started.
func (s *Store) commitRevocations(_ context.Context, calls []*revokeCall) (after func()) {
	items := make([]RevokeItem, 0, len(calls))
	first := make(map[string]bool, len(calls))
	for _, c := range calls {
		if !first[c.item.ID] { // the same id twice: revoked once
			first[c.item.ID] = true
			items = append(items, c.item)
		}
	}
	dctx, cancel := context.WithTimeout(context.Background(), s.cfg.DurableTimeout)
	revoked, err := s.durable.RevokeMany(dctx, items)
	cancel()
	return func() {
		if err != nil {
			for _, c := range calls {
				c.err = fmt.Errorf("sessions: revoke: %w", err)
				close(c.done)
			}
			return
		}
		byID := make(map[string]*Session, len(revoked))
		for _, r := range revoked {
			byID[r.ID] = r
		}
		ps := make([]pendingRevocation, 0, len(calls))
		for _, c := range calls {
			sess := byID[c.item.ID]
			if sess == nil {
				c.err = fmt.Errorf("sessions: revoke: %w", ErrNotFound)
				continue
			}
			delete(byID, c.item.ID) // a later caller with the same id finds it gone
			c.sess = sess
			ps = append(ps, pendingRevocation{
				userID: sess.UserID, ids: []string{sess.ID},
				event: Event{Kind: EventSession, SessionID: sess.ID, UserID: sess.UserID, Reason: c.item.Reason,
					IssuedAt: c.item.At, RequestID: c.requestID},
			})
		}
		s.afterRevokeAll(context.Background(), ps)
		for _, c := range calls {
			close(c.done)
		}
	}
}

// Delivery is one revocation's hot delete and event, for a hot backend
// that is also the Publisher and can do many in one round trip.
type Delivery struct {
	UserID string
	IDs    []string // sessions to delete from the hot backend; none when HotDone
	Event  Event
}

// batchDeliverer is a Hot backend, also the Store's Publisher, that deletes
// and announces several revocations in one round trip, every delete before
// any event.
type batchDeliverer interface {
	DeliverRevocations(ctx context.Context, ds []Delivery) error
}

// afterRevokeAll deletes the hot copies and publishes the events of ps;
// what fails is queued and retried by Run, so a revocation made while
// Redis is down still reaches Redis and the hubs once it is back.
func (s *Store) afterRevokeAll(ctx context.Context, ps []pendingRevocation) {
	if len(ps) == 0 {
		return
	}
	until := s.cfg.Now().Add(s.cfg.NegativeTTL)
	for _, p := range ps {
		for _, id := range p.ids {
			s.neg.add(id, until)
		}
	}
	if failed, err := s.deliverAll(ctx, ps); len(failed) > 0 {
		s.log.Warn("revocations queued for retry", "count", len(failed), "user_id", failed[0].userID, "err", err)
		s.pendMu.Lock()
		for _, p := range failed {
			if len(s.pending) < maxPending {
				s.pending = append(s.pending, p)
			}
		}
		s.pendMu.Unlock()
	}
}

// deliverAll delivers ps, in one hot round trip when the backend can, and
// returns those not delivered (in order) with the first error.
func (s *Store) deliverAll(ctx context.Context, ps []pendingRevocation) ([]pendingRevocation, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	bd, ok := s.hot.(batchDeliverer)
	if !ok || any(s.pub) != any(s.hot) {
		for i := range ps {
			if err := s.deliver(ctx, &ps[i]); err != nil {
				return ps[i:], err
			}
		}
		return nil, nil
	}
	// In chunks, each its own round trip under its own HotTimeout, stopping
	// at the first that fails: a long retry queue after an outage makes
	// progress chunk by chunk instead of timing out as one pipeline.
	for start := 0; start < len(ps); start += maxRevokeBatch {
		chunk := ps[start:min(start+maxRevokeBatch, len(ps))]
		ds := make([]Delivery, len(chunk))
		for i, p := range chunk {
			ds[i] = Delivery{UserID: p.userID, Event: p.event}
			if !p.hotOK {
				ds[i].IDs = p.ids
			}
		}
		err := s.hotDo(ctx, func(ctx context.Context) error { return bd.DeliverRevocations(ctx, ds) })
		if err != nil {
			return ps[start:], err
		}
	}
	return nil, nil
}

var _ batchDeliverer = (*Redis)(nil)
