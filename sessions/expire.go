package sessions

import (
	"context"
	"fmt"
)

// expireBatch bounds one expiry pass: a minute's worth of expiries on a
// busy cluster, in statements short enough never to hold locks for long.
const expireBatch = 500

// ExpireDue records, in the durable backend, the sessions that reached
// their idle or absolute expiry: revoked_at is set to the moment they
// expired, with reason "expired", and an EventSession with ReasonExpired is
// published so hubs close their sockets with 4003 at once instead of at
// their next sweep, and the marked sessions go to the OnExpire function
// (auth's audit log). Without it an expired session would simply stop
// validating and never appear in the revocation reports.
//
// The durable expiry lags the hot one by up to SyncInterval (write-behind),
// so candidates are read with that margin and checked against the hot
// backend: a session still alive there is synced, not expired. With the hot
// backend down nothing is expired (it cannot be checked). Every node may
// run it: the conditional UPDATE lets exactly one node mark and announce
// each session. It returns how many sessions it marked.
func (s *Store) ExpireDue(ctx context.Context) (int, error) {
	now := s.cfg.Now()
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DurableTimeout)
	defer cancel()
	cands, err := s.durable.DueForExpiry(dctx, now.Add(-s.cfg.SyncInterval), expireBatch)
	if err != nil || len(cands) == 0 {
		return 0, err
	}
	ids := make([]string, len(cands))
	for i, c := range cands {
		ids[i] = c.ID
	}
	var exp []Expiry
	if err := s.hotDo(ctx, func(ctx context.Context) (err error) {
		exp, err = s.hot.Expiries(ctx, ids)
		return err
	}); err != nil {
		return 0, fmt.Errorf("sessions: expire: hot backend: %w", err)
	}
	var dead []string
	var behind []Touch
	for i, e := range exp {
		if e.OK && now.Before(e.ExpiresAt) && now.Before(e.AbsoluteExpiresAt) {
			behind = append(behind, Touch{ID: ids[i], LastSeenAt: cands[i].LastSeenAt, ExpiresAt: e.ExpiresAt})
			continue
		}
		dead = append(dead, ids[i])
	}
	if len(behind) > 0 {
		// Alive in the hot backend: catch the durable copy up, so the next
		// pass does not pick it again.
		if err := s.durable.Sync(dctx, behind); err != nil {
			return 0, fmt.Errorf("sessions: expire: sync: %w", err)
		}
	}
	if len(dead) == 0 {
		return 0, nil
	}
	marked, err := s.durable.MarkExpired(dctx, dead)
	if err != nil {
		return 0, fmt.Errorf("sessions: expire: %w", err)
	}
	ps := make([]pendingRevocation, len(marked))
	for i, m := range marked {
		ps[i] = pendingRevocation{
			userID: m.UserID, ids: []string{m.ID},
			event: Event{Kind: EventSession, SessionID: m.ID, UserID: m.UserID, Reason: ReasonExpired, IssuedAt: now.UTC()},
		}
	}
	s.afterRevokeAll(ctx, ps)
	if fn := s.onExpire.Load(); fn != nil && len(marked) > 0 {
		(*fn)(ctx, marked)
	}
	return len(marked), nil
}

// OnExpire sets fn to be called after each expiry pass with the sessions
// that pass marked expired (RevokedAt is the moment each expired). Each
// expired session is handed to fn once in the whole cluster: only the
// pass whose conditional UPDATE marked it sees it. fn runs on the pass's
// goroutine (the Run loop), after the revocations were announced; a
// second call replaces fn, nil removes it. auth records the audit rows
// with it.
func (s *Store) OnExpire(fn func(ctx context.Context, expired []*Session)) {
	if fn == nil {
		s.onExpire.Store(nil)
		return
	}
	s.onExpire.Store(&fn)
}
