package sessions_test

import (
	"context"
	"crypto/sha256"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/sessions"
)

// TestStoreContract runs one suite against the production pair (real Redis
// + real Postgres) and the embedded memory backend: both must behave alike.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	for name, setup := range map[string]setupFunc{
		"redis+postgres": setupRedisPostgres,
		"memory":         setupMemory,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runContract(t, setup)
		})
	}
}

func runContract(t *testing.T, setup setupFunc) {
	ctx := context.Background()
	day := sessions.Config{IdleTTL: 12 * time.Hour, MaxAge: 168 * time.Hour}

	t.Run("CreateAuthenticate", func(t *testing.T) {
		t.Parallel()
		b := setup(t, day)
		user := b.newUser(t)
		s, tok, err := b.store.Create(ctx, sessions.NewSession{
			UserID: user, Kind: sessions.KindRefresh, Scopes: []string{"sub:room:*", "pub:room:*"},
			Device: "Pixel 8", IP: "2001:db8::1", UserAgent: "app/2",
		})
		require.NoError(t, err)
		require.Equal(t, tok.ID, s.ID)
		require.True(t, sessions.ValidID(s.ID))
		sum := sha256.Sum256([]byte(tok.Secret))
		require.Equal(t, sum[:], s.SecretHash)

		got, err := b.store.Authenticate(ctx, tok.String())
		require.NoError(t, err)
		require.Equal(t, s.ID, got.ID)
		require.Equal(t, user, got.UserID)
		require.Equal(t, sessions.KindRefresh, got.Kind)
		require.Equal(t, []string{"sub:room:*", "pub:room:*"}, got.Scopes)
		require.Equal(t, "Pixel 8", got.Device)
		require.Equal(t, "2001:db8::1", got.IP)
		require.Equal(t, "app/2", got.UserAgent)
		require.Equal(t, s.CSRFToken, got.CSRFToken)
		require.True(t, got.MatchCSRF(s.CSRFToken))
		require.False(t, got.MatchCSRF(""))
		require.True(t, s.CreatedAt.Equal(got.CreatedAt))
		require.True(t, s.AbsoluteExpiresAt.Equal(got.AbsoluteExpiresAt))

		// Right id, wrong secret (another session's): refused, in constant
		// time through MatchSecret.
		_, other := create(t, b, user)
		forged := sessions.Token{ID: tok.ID, Secret: other.Secret}
		require.False(t, got.MatchSecret(forged))
		_, err = b.store.Authenticate(ctx, forged.String())
		require.ErrorIs(t, err, sessions.ErrInvalidToken)

		// Lookup finds it by public id without sliding.
		b.clock.Advance(time.Hour)
		l, err := b.store.Lookup(ctx, s.ID)
		require.NoError(t, err)
		require.True(t, got.ExpiresAt.Equal(l.ExpiresAt))
		_, err = b.store.Lookup(ctx, "not-an-id")
		require.ErrorIs(t, err, sessions.ErrNotFound)
	})

	t.Run("MalformedTokens", func(t *testing.T) {
		t.Parallel()
		b := setup(t, day)
		_, tok := create(t, b, b.newUser(t))
		bad := []string{
			"", ".", "abc", tok.ID, tok.ID + ".", "." + tok.Secret,
			tok.ID + "." + strings.TrimPrefix(tok.Secret, sessions.SecretPrefix), // no shs_
			tok.ID + "." + tok.Secret + "A",                                      // too long
			tok.ID + "." + tok.Secret[:len(tok.Secret)-1],                        // too short
			tok.ID + "." + tok.Secret[:len(tok.Secret)-1] + "!",                  // not base64url
			tok.ID + "x." + tok.Secret,                                           // id too long
			strings.Replace(tok.String(), ".", "..", 1),
			tok.ID + " ." + tok.Secret,
			"shr_" + tok.String(),
		}
		before := b.store.Stats()
		for _, raw := range bad {
			_, err := b.store.Authenticate(ctx, raw)
			require.ErrorIs(t, err, sessions.ErrInvalidToken, "token %q", raw)
		}
		after := b.store.Stats()
		require.Equal(t, before.DurableQueries, after.DurableQueries, "garbage never reaches a backend")
		require.Equal(t, before.UnknownTokens+uint64(len(bad)), after.UnknownTokens)
	})

	// SECURITY.md item 9: the idle timeout slides with activity; idleness
	// past it is a 401 and the hot key is gone.
	t.Run("SlidingIdleExpiry_SEC9", func(t *testing.T) {
		t.Parallel()
		b := setup(t, day)
		s, tok := create(t, b, b.newUser(t))
		for range 3 {
			b.clock.Advance(11 * time.Hour)
			got, err := b.store.Authenticate(ctx, tok.String())
			require.NoError(t, err)
			now := b.clock.Now()
			require.True(t, now.Add(12*time.Hour).Equal(got.ExpiresAt))
			require.Equal(t, 12*time.Hour, got.MaxAge(now))
			if b.hotTTL != nil {
				ttl := b.hotTTL(t, s.ID)
				require.Greater(t, ttl, 11*time.Hour, "the Redis TTL was slid")
				require.LessOrEqual(t, ttl, 12*time.Hour)
			}
		}
		require.True(t, b.hotHas(t, s.ID))
		b.clock.Advance(12*time.Hour + time.Second)
		_, err := b.store.Authenticate(ctx, tok.String())
		require.ErrorIs(t, err, sessions.ErrNotFound)
		require.False(t, b.hotHas(t, s.ID), "an idle-expired session leaves the hot backend")
		_, err = b.store.Authenticate(ctx, tok.String())
		require.ErrorIs(t, err, sessions.ErrNotFound, "not restored from the durable copy either")
		require.False(t, b.hotHas(t, s.ID))
		st, err := b.store.Status(ctx, []string{s.ID})
		require.NoError(t, err)
		require.Equal(t, []sessions.Status{sessions.StatusExpired}, st)
	})

	// An expired session is recorded as revoked with reason "expired" at
	// the moment it expired (so reports count it), announced to the hubs
	// (4003), and a session alive in the hot backend is never expired
	// because its durable copy lags behind.
	t.Run("ExpireDue", func(t *testing.T) {
		t.Parallel()
		b := setup(t, day)
		events := b.events(t)
		user := b.newUser(t)
		idle, _ := create(t, b, user)
		busy, busyTok := create(t, b, user)
		b.clock.Advance(11 * time.Hour)
		_, err := b.store.Authenticate(ctx, busyTok.String())
		require.NoError(t, err)
		b.clock.Advance(2 * time.Hour) // idle expired an hour ago, busy lives 10 h more
		var told []*sessions.Session   // what OnExpire was handed (the audit log's feed)
		b.store.OnExpire(func(_ context.Context, expired []*sessions.Session) { told = append(told, expired...) })

		n, err := b.store.ExpireDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Len(t, told, 1)
		require.Equal(t, idle.ID, told[0].ID)
		require.True(t, idle.ExpiresAt.Equal(told[0].RevokedAt), "RevokedAt is the expiry, got %v", told[0].RevokedAt)
		row := b.durableRow(t, idle.ID)
		require.Equal(t, sessions.ReasonExpired, row.RevokeReason)
		require.True(t, idle.ExpiresAt.Equal(row.RevokedAt), "revoked at its expiry, got %v", row.RevokedAt)
		require.True(t, b.durableRow(t, busy.ID).RevokedAt.IsZero(), "a session alive in the hot backend is not expired")
		require.False(t, b.hotHas(t, idle.ID))
		ev := nextEvent(t, events)
		require.Equal(t, "expired", ev["reason"])
		require.Equal(t, idle.ID, ev["session_id"])
		require.Equal(t, "session", ev["kind"])

		n, err = b.store.ExpireDue(ctx)
		require.NoError(t, err)
		require.Zero(t, n, "each expiry is recorded once")
		require.Len(t, told, 1, "and handed to OnExpire once")
		_, err = b.store.Authenticate(ctx, busyTok.String())
		require.NoError(t, err)
	})

	// SECURITY.md item 10: the absolute lifetime is never extended, and
	// MaxAge (the cookie's Max-Age and the hot TTL) never exceeds it.
	t.Run("AbsoluteLifetime_SEC10", func(t *testing.T) {
		t.Parallel()
		b := setup(t, sessions.Config{IdleTTL: 12 * time.Hour, MaxAge: 24 * time.Hour})
		s, tok := create(t, b, b.newUser(t))
		abs := s.AbsoluteExpiresAt
		require.True(t, s.CreatedAt.Add(24*time.Hour).Equal(abs))
		for _, step := range []time.Duration{11 * time.Hour, 11 * time.Hour, time.Hour, 59 * time.Minute} {
			b.clock.Advance(step)
			now := b.clock.Now()
			got, err := b.store.Authenticate(ctx, tok.String())
			require.NoError(t, err)
			require.True(t, abs.Equal(got.AbsoluteExpiresAt), "absolute expiry never moves")
			require.False(t, got.ExpiresAt.After(abs))
			left := abs.Sub(now)
			require.LessOrEqual(t, got.MaxAge(now), left)
			require.Equal(t, min(12*time.Hour, left), got.MaxAge(now))
			if b.hotTTL != nil {
				require.LessOrEqual(t, b.hotTTL(t, s.ID), left, "the Redis TTL never outlives the absolute expiry")
			}
		}
		b.clock.Advance(time.Minute + time.Second) // past created + 24h
		_, err := b.store.Authenticate(ctx, tok.String())
		require.ErrorIs(t, err, sessions.ErrNotFound)
		require.False(t, b.hotHas(t, s.ID))
	})

	// SECURITY.md item 12: durable revoked_at + reason, hot key gone, event
	// published; the old token is refused.
	t.Run("RevokeOne_SEC12", func(t *testing.T) {
		t.Parallel()
		b := setup(t, day)
		events := b.events(t)
		user := b.newUser(t)
		s1, tok1 := create(t, b, user)
		_, tok2 := create(t, b, user)
		b.clock.Advance(time.Minute)

		got, err := b.store.Revoke(ctx, s1.ID, sessions.Revocation{Reason: sessions.ReasonLogout, RequestID: "req-1"})
		require.NoError(t, err)
		require.Equal(t, s1.ID, got.ID)
		require.Equal(t, user, got.UserID)

		row := b.durableRow(t, s1.ID)
		require.NotNil(t, row)
		require.True(t, b.clock.Now().Equal(row.RevokedAt), "revoked_at %v", row.RevokedAt)
		require.Equal(t, sessions.ReasonLogout, row.RevokeReason)
		require.False(t, b.hotHas(t, s1.ID))

		ev := nextEvent(t, events)
		issued, err := time.Parse(time.RFC3339Nano, ev["issued_at"].(string))
		require.NoError(t, err)
		require.True(t, b.clock.Now().Equal(issued))
		delete(ev, "issued_at")
		require.Equal(t, map[string]any{
			"kind": "session", "session_id": s1.ID, "user_id": user,
			"reason": "logout", "request_id": "req-1",
		}, ev)

		_, err = b.store.Authenticate(ctx, tok1.String())
		require.ErrorIs(t, err, sessions.ErrNotFound)
		_, err = b.store.Authenticate(ctx, tok2.String())
		require.NoError(t, err, "the user's other session lives")

		_, err = b.store.Revoke(ctx, s1.ID, sessions.Revocation{Reason: sessions.ReasonLogout})
		require.ErrorIs(t, err, sessions.ErrNotFound, "a second revoke finds nothing")
		_, err = b.store.Revoke(ctx, sessions.NewToken().ID, sessions.Revocation{Reason: sessions.ReasonLogout})
		require.ErrorIs(t, err, sessions.ErrNotFound)
		_, err = b.store.Revoke(ctx, "../etc", sessions.Revocation{Reason: sessions.ReasonLogout})
		require.ErrorIs(t, err, sessions.ErrNotFound)
		noEvent(t, events)
	})

	// SECURITY.md item 15: one call ends every session of a user (all of
	// them, or all but one).
	t.Run("RevokeUser_SEC15", func(t *testing.T) {
		t.Parallel()
		b := setup(t, day)
		events := b.events(t)
		user, other := b.newUser(t), b.newUser(t)
		a, tokA := create(t, b, user)
		s2, tok2 := create(t, b, user)
		s3, tok3 := create(t, b, user)
		_, tokO := create(t, b, other)

		// A password change keeps the session that made it.
		ids, err := b.store.RevokeUser(ctx, user, sessions.Revocation{Reason: sessions.ReasonPasswordChange, Except: a.ID})
		require.NoError(t, err)
		require.ElementsMatch(t, []string{s2.ID, s3.ID}, ids)
		got := []string{}
		for range 2 {
			ev := nextEvent(t, events)
			require.Equal(t, "session", ev["kind"])
			require.Equal(t, user, ev["user_id"])
			require.Equal(t, "password_change", ev["reason"])
			got = append(got, ev["session_id"].(string))
		}
		require.ElementsMatch(t, ids, got)
		for _, tok := range []sessions.Token{tok2, tok3} {
			_, err := b.store.Authenticate(ctx, tok.String())
			require.ErrorIs(t, err, sessions.ErrNotFound)
		}
		for _, id := range ids {
			require.False(t, b.hotHas(t, id))
			require.Equal(t, sessions.ReasonPasswordChange, b.durableRow(t, id).RevokeReason)
		}
		_, err = b.store.Authenticate(ctx, tokA.String())
		require.NoError(t, err)
		require.True(t, b.durableRow(t, a.ID).RevokedAt.IsZero())

		// Global logout: everything, one user event.
		ids, err = b.store.RevokeUser(ctx, user, sessions.Revocation{Reason: sessions.ReasonLogoutAll})
		require.NoError(t, err)
		require.Equal(t, []string{a.ID}, ids)
		ev := nextEvent(t, events)
		delete(ev, "issued_at")
		require.Equal(t, map[string]any{"kind": "user", "user_id": user, "reason": "logout_all"}, ev)
		_, err = b.store.Authenticate(ctx, tokA.String())
		require.ErrorIs(t, err, sessions.ErrNotFound)
		require.False(t, b.hotHas(t, a.ID))
		list, err := b.store.List(ctx, user)
		require.NoError(t, err)
		require.Empty(t, list)

		_, err = b.store.Authenticate(ctx, tokO.String())
		require.NoError(t, err, "another user's session is untouched")

		ids, err = b.store.RevokeUser(ctx, user, sessions.Revocation{Reason: sessions.ReasonLogoutAll})
		require.NoError(t, err)
		require.Empty(t, ids)
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		b := setup(t, day)
		user, other := b.newUser(t), b.newUser(t)
		var want []string
		for range 3 {
			s, _ := create(t, b, user)
			want = append(want, s.ID)
			b.clock.Advance(time.Minute)
		}
		create(t, b, other)
		list, err := b.store.List(ctx, user)
		require.NoError(t, err)
		require.ElementsMatch(t, want, ids(list))
		for _, s := range list {
			require.Equal(t, user, s.UserID)
		}

		_, err = b.store.Revoke(ctx, want[0], sessions.Revocation{Reason: sessions.ReasonRevoked})
		require.NoError(t, err)
		list, err = b.store.List(ctx, user)
		require.NoError(t, err)
		require.ElementsMatch(t, want[1:], ids(list))

		b.clock.Advance(12 * time.Hour)
		list, err = b.store.List(ctx, user)
		require.NoError(t, err)
		require.Empty(t, list, "expired sessions are not listed")
		list, err = b.store.List(ctx, b.newUser(t))
		require.NoError(t, err)
		require.Empty(t, list)
	})

	t.Run("Status", func(t *testing.T) {
		t.Parallel()
		b := setup(t, day)
		user := b.newUser(t)
		expired, _ := create(t, b, user)
		b.clock.Advance(11 * time.Hour)
		alive, _ := create(t, b, user)
		revoked, _ := create(t, b, user)
		b.clock.Advance(2 * time.Hour)
		_, err := b.store.Revoke(ctx, revoked.ID, sessions.Revocation{Reason: sessions.ReasonAdmin})
		require.NoError(t, err)
		unknown := sessions.NewToken().ID

		st, err := b.store.Status(ctx, []string{alive.ID, revoked.ID, expired.ID, unknown})
		require.NoError(t, err)
		require.Equal(t, []sessions.Status{
			sessions.StatusAlive, sessions.StatusRevoked, sessions.StatusExpired, sessions.StatusRevoked,
		}, st)
		require.Equal(t, "alive revoked expired", st[0].String()+" "+st[1].String()+" "+st[2].String())
		st, err = b.store.Status(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, st)

		// A sweep that finds a globally logged-out or a recorded-expired
		// session before (or without) the event still gives the hub the
		// right close code.
		other := b.newUser(t)
		gone, _ := create(t, b, other)
		_, err = b.store.RevokeUser(ctx, other, sessions.Revocation{Reason: sessions.ReasonLogoutAll})
		require.NoError(t, err)
		n, err := b.store.ExpireDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n, "the expired session is recorded")
		st, err = b.store.Status(ctx, []string{gone.ID, expired.ID})
		require.NoError(t, err)
		require.Equal(t, []sessions.Status{sessions.StatusLoggedOut, sessions.StatusExpired}, st)
		require.Equal(t, "logged_out", st[0].String())
	})

	t.Run("CountActive", func(t *testing.T) {
		t.Parallel()
		b := setup(t, day)
		n, err := b.store.CountActive(ctx)
		require.NoError(t, err)
		require.Zero(t, n)
		u1, u2 := b.newUser(t), b.newUser(t)
		var first *sessions.Session
		for range 3 {
			first, _ = create(t, b, u1)
		}
		create(t, b, u2)
		_, tok := create(t, b, u2)
		n, err = b.store.CountActive(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 5, n)

		_, err = b.store.Revoke(ctx, first.ID, sessions.Revocation{Reason: sessions.ReasonLogout})
		require.NoError(t, err)
		n, err = b.store.CountActive(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 4, n)

		// Eleven hours on, one session is slid; past the others' idle
		// expiry only it still counts.
		b.clock.Advance(11 * time.Hour)
		_, err = b.store.Authenticate(ctx, tok.String())
		require.NoError(t, err)
		b.clock.Advance(time.Hour + time.Second)
		n, err = b.store.CountActive(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
	})

	// The hot backend never recreates a session deleted under a racing
	// touch (a revocation must win).
	t.Run("TouchNeverRecreates", func(t *testing.T) {
		t.Parallel()
		b := setup(t, day)
		s, _ := create(t, b, b.newUser(t))
		now := b.clock.Now()
		touch := sessions.Touch{ID: s.ID, LastSeenAt: now, ExpiresAt: now.Add(time.Hour), SyncedAt: now}
		require.NoError(t, b.hot.Touch(ctx, touch, time.Hour))
		require.NoError(t, b.hot.Delete(ctx, s.UserID, s.ID))
		require.ErrorIs(t, b.hot.Touch(ctx, touch, time.Hour), sessions.ErrNotFound)
		require.False(t, b.hotHas(t, s.ID))
		_, err := b.hot.Get(ctx, s.ID)
		require.ErrorIs(t, err, sessions.ErrNotFound)
		n, err := b.hot.CountActive(ctx, now)
		require.NoError(t, err)
		require.Zero(t, n, "the expiry index did not get the member back")
		require.NoError(t, b.hot.Delete(ctx, s.UserID), "deleting nothing is fine")
	})

	// SECURITY.md item 6: an unknown token writes nothing, costs at most
	// one durable read per id per NegativeTTL even under a concurrent
	// flood, and is counted.
	t.Run("UnknownTokenNegativeCache_SEC6", func(t *testing.T) {
		t.Parallel()
		b := setup(t, day)
		tok := sessions.NewToken()
		flood := func() {
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range 16 {
				wg.Go(func() {
					<-start
					for range 20 {
						_, err := b.store.Authenticate(ctx, tok.String())
						assert.ErrorIs(t, err, sessions.ErrNotFound)
					}
				})
			}
			close(start)
			wg.Wait()
			for range 50 {
				_, err := b.store.Authenticate(ctx, tok.String())
				require.ErrorIs(t, err, sessions.ErrNotFound)
			}
		}
		before := b.store.Stats()
		flood()
		st := b.store.Stats()
		require.Equal(t, before.DurableQueries+1, st.DurableQueries, "one durable read for the whole flood")
		require.Equal(t, before.UnknownTokens+370, st.UnknownTokens)

		b.clock.Advance(b.cfg.NegativeTTL - time.Second)
		flood()
		require.Equal(t, before.DurableQueries+1, b.store.Stats().DurableQueries, "still cached")

		b.clock.Advance(time.Second)
		flood()
		require.Equal(t, before.DurableQueries+2, b.store.Stats().DurableQueries, "one more read per NegativeTTL")
		require.Equal(t, before.UnknownTokens+3*370, b.store.Stats().UnknownTokens)

		// Nothing was written anywhere.
		require.Nil(t, b.durableRow(t, tok.ID))
		require.False(t, b.hotHas(t, tok.ID))
		if b.hotKeys != nil {
			require.Empty(t, b.hotKeys(t))
		}
	})
}

func ids(list []*sessions.Session) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.ID
	}
	return out
}
