package auth

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/sessions"
)

// refreshBackend is one RefreshStore under the contract suite, with the
// means to make a session for it and to count a family's records.
type refreshBackend struct {
	store      RefreshStore
	newSession func(t *testing.T, createdAt time.Time) string
	familySize func(t *testing.T, sessionID string) int
}

// refreshFixture is a Refresher on a backend with its own clock.
type refreshFixture struct {
	*refreshBackend
	r     *Refresher
	clock *tokensClock
}

func (b *refreshBackend) fixture(t *testing.T, cfg RefreshConfig) *refreshFixture {
	t.Helper()
	clock := newTokensClock()
	cfg.Now = clock.Now
	r, err := NewRefresher(cfg, b.store)
	require.NoError(t, err)
	return &refreshFixture{refreshBackend: b, r: r, clock: clock}
}

// issue makes a session and the first token of its family.
func (f *refreshFixture) issue(t *testing.T) (sessionID, token string) {
	t.Helper()
	sessionID = f.newSession(t, f.clock.Now())
	token, err := f.r.Issue(context.Background(), sessionID)
	require.NoError(t, err)
	return sessionID, token
}

// rotate rotates token and requires success for sessionID.
func (f *refreshFixture) rotate(t *testing.T, sessionID, token string) string {
	t.Helper()
	sid, next, err := f.r.Rotate(context.Background(), token)
	require.NoError(t, err)
	require.Equal(t, sessionID, sid)
	require.NotEqual(t, token, next)
	return next
}

// requireReuse checks that token is reported as reuse of sessionID's family.
func (f *refreshFixture) requireReuse(t *testing.T, sessionID, token string) {
	t.Helper()
	sid, next, err := f.r.Rotate(context.Background(), token)
	require.ErrorIs(t, err, ErrRefreshReuse)
	require.Equal(t, sessionID, sid, "reuse comes with the session id, so the caller revokes the family")
	require.Empty(t, next)
}

func (f *refreshFixture) requireInvalid(t *testing.T, token string) {
	t.Helper()
	sid, next, err := f.r.Rotate(context.Background(), token)
	require.ErrorIs(t, err, ErrRefreshInvalid)
	require.Empty(t, sid, "an invalid token names no session: a forger cannot get a family revoked")
	require.Empty(t, next)
}

func newMemoryRefreshBackend(t *testing.T) *refreshBackend {
	store := NewRefreshMemory()
	return &refreshBackend{
		store: store,
		newSession: func(t *testing.T, _ time.Time) string {
			return sessions.RandomString(16)
		},
		familySize: func(t *testing.T, sessionID string) int {
			m := store.(*refreshMemory)
			m.mu.Lock()
			defer m.mu.Unlock()
			n := 0
			for _, r := range m.byID {
				if r.sessionID == sessionID {
					n++
				}
			}
			return n
		},
	}
}

// TestRefreshContract runs the same behaviour against Postgres and memory
// (DESIGN.md: both implementations pass the same contract tests).
func TestRefreshContract(t *testing.T) {
	t.Parallel()
	backends := map[string]func(t *testing.T) *refreshBackend{
		"memory":   newMemoryRefreshBackend,
		"postgres": func(t *testing.T) *refreshBackend { return newPostgresRefreshBackend(t).refreshBackend },
	}
	for name, mk := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runRefreshContract(t, mk(t))
		})
	}
}

func runRefreshContract(t *testing.T, b *refreshBackend) {
	ctx := context.Background()

	// SECURITY 1: ≥ 256 bits from crypto/rand, with a scanner-friendly
	// prefix, in the wire form <id>.shr_<43 chars>.
	t.Run("IssueFormat", func(t *testing.T) {
		t.Parallel()
		f := b.fixture(t, RefreshConfig{})
		_, tok := f.issue(t)
		_, tok2 := f.issue(t)
		require.NotEqual(t, tok, tok2)
		for _, tk := range []string{tok, tok2} {
			id, secret, ok := strings.Cut(tk, ".")
			require.True(t, ok)
			require.Len(t, id, 22)
			require.True(t, strings.HasPrefix(secret, "shr_"), "secret scanners recognise the prefix")
			raw, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimPrefix(secret, "shr_"))
			require.NoError(t, err)
			require.GreaterOrEqual(t, len(raw)*8, 256)
			p, ok := parseRefreshToken(tk)
			require.True(t, ok)
			require.Equal(t, tk, p.String())
		}
	})

	t.Run("OneFamilyPerSession", func(t *testing.T) {
		t.Parallel()
		f := b.fixture(t, RefreshConfig{})
		sid, _ := f.issue(t)
		_, err := f.r.Issue(ctx, sid)
		require.ErrorIs(t, err, ErrRefreshFamilyExists)
		require.Equal(t, 1, f.familySize(t, sid))
	})

	t.Run("IssueMalformedSession", func(t *testing.T) {
		t.Parallel()
		f := b.fixture(t, RefreshConfig{})
		_, err := f.r.Issue(ctx, "not a session id")
		require.ErrorIs(t, err, sessions.ErrNotFound)
	})

	// SECURITY 27: every use rotates; the old token stops working.
	t.Run("EveryUseRotates", func(t *testing.T) {
		t.Parallel()
		f := b.fixture(t, RefreshConfig{})
		sid, t0 := f.issue(t)
		chain := []string{t0}
		for range 4 {
			f.clock.Advance(time.Hour)
			chain = append(chain, f.rotate(t, sid, chain[len(chain)-1]))
		}
		seen := map[string]bool{}
		for _, tk := range chain {
			require.False(t, seen[tk])
			seen[tk] = true
		}
		require.Equal(t, len(chain), f.familySize(t, sid))
		f.clock.Advance(time.Minute) // past the grace of the last rotation
		for _, old := range chain[:len(chain)-1] {
			f.requireReuse(t, sid, old)
		}
		f.rotate(t, sid, chain[len(chain)-1])
	})

	// SECURITY 27: a retry of the just-rotated token within the grace
	// window gets the same successor — no fork.
	t.Run("GraceRetrySameSuccessor", func(t *testing.T) {
		t.Parallel()
		f := b.fixture(t, RefreshConfig{})
		sid, t0 := f.issue(t)
		t1 := f.rotate(t, sid, t0)
		f.clock.Advance(10 * time.Second)
		require.Equal(t, t1, f.rotate(t, sid, t0))
		f.clock.Advance(20 * time.Second) // exactly the 30 s grace
		require.Equal(t, t1, f.rotate(t, sid, t0))
		require.Equal(t, 2, f.familySize(t, sid), "retries add no token")
		t2 := f.rotate(t, sid, t1)
		require.NotEqual(t, t1, t2, "the successor handed out twice is still a normal current token")
	})

	// SECURITY 27: after the grace window, re-presenting is theft.
	t.Run("ReuseAfterGrace", func(t *testing.T) {
		t.Parallel()
		f := b.fixture(t, RefreshConfig{})
		sid, t0 := f.issue(t)
		t1 := f.rotate(t, sid, t0)
		f.clock.Advance(30*time.Second + time.Microsecond)
		f.requireReuse(t, sid, t0)
		f.requireReuse(t, sid, t0)
		// The store does not burn the family itself: the caller revokes
		// the session, and checks every later Rotate against it.
		require.NotEmpty(t, f.rotate(t, sid, t1))
	})

	// Older ancestors are always reuse, even within the grace window.
	t.Run("AncestorIsReuseWithinGrace", func(t *testing.T) {
		t.Parallel()
		f := b.fixture(t, RefreshConfig{})
		sid, t0 := f.issue(t)
		t1 := f.rotate(t, sid, t0)
		t2 := f.rotate(t, sid, t1)
		f.requireReuse(t, sid, t0)
		require.Equal(t, t2, f.rotate(t, sid, t1), "t1 is the immediately previous token: a retry")
	})

	t.Run("NegativeGraceMeansNoRetries", func(t *testing.T) {
		t.Parallel()
		f := b.fixture(t, RefreshConfig{Grace: -1})
		sid, t0 := f.issue(t)
		f.rotate(t, sid, t0)
		f.requireReuse(t, sid, t0)
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		f := b.fixture(t, RefreshConfig{})
		sid, t0 := f.issue(t)
		id, secret, _ := strings.Cut(t0, ".")
		forged := id + ".shr_" + sessions.RandomString(32)
		for _, bad := range []string{
			"", ".", t0 + "x", t0[:len(t0)-1], strings.Replace(t0, "shr_", "shs_", 1),
			id, secret, id + "." + secret[4:], "shr_" + secret,
			sessions.RandomString(16) + ".shr_" + sessions.RandomString(32), // unknown id
			forged, // right id, wrong secret
			id + ".shr_" + strings.Repeat("=", 43),
		} {
			f.requireInvalid(t, bad)
		}
		t1 := f.rotate(t, sid, t0)
		f.clock.Advance(time.Hour)
		f.requireInvalid(t, forged) // a rotated token with a wrong secret is not reuse
		f.rotate(t, sid, t1)
	})

	// SECURITY 28: N concurrent rotations of one token yield exactly one
	// successor; every caller gets it (they are all within the grace).
	t.Run("ConcurrentRotateOneSuccessor", func(t *testing.T) {
		t.Parallel()
		f := b.fixture(t, RefreshConfig{})
		sid, t0 := f.issue(t)
		const n = 16
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			nexts = make([]string, n)
			errs  = make([]error, n)
			sids  = make([]string, n)
		)
		for i := range n {
			wg.Go(func() {
				<-start
				sids[i], nexts[i], errs[i] = f.r.Rotate(ctx, t0)
			})
		}
		close(start)
		wg.Wait()
		distinct := map[string]bool{}
		for i := range n {
			require.NoError(t, errs[i])
			require.Equal(t, sid, sids[i])
			distinct[nexts[i]] = true
		}
		require.Len(t, distinct, 1, "exactly one successor")
		require.Equal(t, 2, f.familySize(t, sid))
		f.rotate(t, sid, nexts[0])
	})

	// Concurrent Issues for one session make one family.
	t.Run("ConcurrentIssueOneFamily", func(t *testing.T) {
		t.Parallel()
		f := b.fixture(t, RefreshConfig{})
		sid := f.newSession(t, f.clock.Now())
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { _, errs[i] = f.r.Issue(ctx, sid) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else {
				require.ErrorIs(t, err, ErrRefreshFamilyExists)
			}
		}
		require.Equal(t, 1, ok)
		require.Equal(t, 1, f.familySize(t, sid))
	})
}

func TestNewRefresherConfig(t *testing.T) {
	t.Parallel()
	_, err := NewRefresher(RefreshConfig{}, nil)
	require.Error(t, err)
	r, err := NewRefresher(RefreshConfig{}, NewRefreshMemory())
	require.NoError(t, err)
	require.Equal(t, DefaultRefreshGrace, r.cfg.Grace)
}

// TestRefreshSealedSuccessor: the grace-window answer comes only from the
// presented secret — the stored record alone opens nothing.
func TestRefreshSealedSuccessor(t *testing.T) {
	t.Parallel()
	b := newMemoryRefreshBackend(t)
	f := b.fixture(t, RefreshConfig{})
	sid, t0 := f.issue(t)
	t1 := f.rotate(t, sid, t0)
	p0, _ := parseRefreshToken(t0)
	p1, _ := parseRefreshToken(t1)
	m := b.store.(*refreshMemory)
	m.mu.Lock()
	cur, succ := m.byID[p0.id].clone(), m.byID[p1.id].clone()
	m.mu.Unlock()
	require.NotContains(t, string(cur.successorSealed), p1.secret)
	require.Equal(t, p1.id, cur.successorID)

	n, err := openSuccessor(p0, cur, succ)
	require.NoError(t, err)
	require.Equal(t, t1, n.String())

	wrong := refreshToken{id: p0.id, secret: RefreshPrefix + sessions.RandomString(32)}
	_, err = openSuccessor(wrong, cur, succ)
	require.Error(t, err, "another secret derives another key")

	other := *cur
	other.id = sessions.RandomString(16)
	_, err = openSuccessor(refreshToken{id: other.id, secret: p0.secret}, &other, succ)
	require.Error(t, err, "the seal is bound to its parent's id")
}

// FuzzRefreshParse: parseRefreshToken never panics and accepts only the
// exact wire form, which round-trips.
func FuzzRefreshParse(f *testing.F) {
	good := newRefreshToken().String()
	f.Add(good)
	f.Add(good + "x")
	f.Add(strings.Replace(good, "shr_", "shs_", 1))
	f.Add(sessions.NewToken().String())
	f.Add(".shr_")
	f.Add("")
	f.Add(fmt.Sprintf("%s.shr_%s", strings.Repeat("a", 22), strings.Repeat("é", 22)))
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := parseRefreshToken(s)
		if !ok {
			require.Equal(t, refreshToken{}, p)
			return
		}
		require.Equal(t, s, p.String())
		require.True(t, sessions.ValidID(p.id))
		require.Len(t, p.secret, 47)
		require.True(t, strings.HasPrefix(p.secret, RefreshPrefix))
		_, err := base64.RawURLEncoding.DecodeString(p.secret[len(RefreshPrefix):])
		require.NoError(t, err)
	})
}

// TestRefreshParseAlphabet: a refresh token's secret is checked against
// base64url's alphabet, byte by byte, as sessions checks its own tokens.
func TestRefreshParseAlphabet(t *testing.T) {
	t.Parallel()
	good := newRefreshToken().String()
	at := len(good) - 1 // the secret's last byte
	for c := range 256 {
		tok := good[:at] + string([]byte{byte(c)})
		_, ok := parseRefreshToken(tok)
		require.Equal(t, sessions.IsBase64URL(string([]byte{byte(c)})), ok, "byte %#x", c)
	}
}
