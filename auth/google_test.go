package auth

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/sessions"
)

// TestGoogleLoginEndToEnd walks the real redirects: sessionhub → provider
// (state, nonce, PKCE S256) → callback → a browser session exactly like a
// password login's, a new account keyed by (google, sub), audit events and
// metrics.
func TestGoogleLoginEndToEnd(t *testing.T) {
	t.Parallel()
	g := newGoogleRig(t, true)
	b := g.browser(t)
	g.queue(&oidcUser{Sub: "g-100", Email: "Ann@gmail.com", EmailVerified: true, Name: "Ann"})

	start := b.get(t, "/auth/google/login")
	require.Equal(t, http.StatusFound, start.StatusCode)
	to, err := url.Parse(start.Header.Get("Location"))
	require.NoError(t, err)
	q := to.Query()
	require.Equal(t, g.provider.ClientID, q.Get("client_id"))
	require.Equal(t, "code", q.Get("response_type"))
	require.Equal(t, "S256", q.Get("code_challenge_method"))
	require.Equal(t, "openid email profile", q.Get("scope"))
	require.Equal(t, g.public.URL+GoogleCallbackPath, q.Get("redirect_uri"))
	require.GreaterOrEqual(t, len(q.Get("state")), 22)
	require.GreaterOrEqual(t, len(q.Get("nonce")), 22)
	sc := start.setCookie(oidcStateCookie)
	for _, attr := range []string{"Path=/", "Max-Age=600", "HttpOnly", "Secure", "SameSite=Lax"} {
		require.Contains(t, sc, attr)
	}
	require.NotContains(t, sc, q.Get("state"), "the state cookie is sealed")

	atProvider := b.get(t, to.String())
	require.Equal(t, http.StatusFound, atProvider.StatusCode, atProvider.body)
	cb := b.get(t, atProvider.Header.Get("Location"))
	require.Equal(t, http.StatusFound, cb.StatusCode, cb.body)
	require.Equal(t, "/", cb.Header.Get("Location"))
	require.Equal(t, "no-store", cb.Header.Get("Cache-Control"))
	sess := cb.setCookie(CookieName)
	for _, attr := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=None", "Max-Age="} {
		require.Contains(t, sess, attr)
	}
	require.NotContains(t, sess, "Domain")
	require.Contains(t, cb.setCookie(oidcStateCookie), "Max-Age=0")

	// The session is a normal browser session: /session answers with a
	// CSRF token and the account Google created.
	me := b.get(t, "/session")
	require.Equal(t, http.StatusOK, me.StatusCode, me.body)
	body := me.json(t)
	require.NotEmpty(t, body["csrf_token"])
	user := body["user"].(map[string]any)
	require.Equal(t, "Ann@gmail.com", user["email"])
	require.Equal(t, "Ann", user["name"])
	require.Equal(t, "browser", body["session"].(map[string]any)["kind"])
	uid := user["id"].(string)

	var verified, hasPassword bool
	require.NoError(t, g.pool.QueryRow(context.Background(),
		"SELECT email_verified, password_hash IS NOT NULL FROM users WHERE id = $1", uid).Scan(&verified, &hasPassword))
	require.True(t, verified, "Google said email_verified")
	require.False(t, hasPassword)
	require.Equal(t, 1, g.count(t, "SELECT count(*) FROM user_identities WHERE provider = 'google' AND subject = 'g-100' AND user_id = $1", uid))

	var types []string
	for _, e := range g.allEvents(t) {
		types = append(types, string(e.Type))
		require.Equal(t, uid, e.UserID)
		require.Equal(t, "google", e.Detail["method"], e.Type)
	}
	require.Equal(t, []string{"signup", "session_created", "login_succeeded"}, types)
	require.Equal(t, 1.0, g.googleLogins(t, "success"))

	// Logging in again is the same account, a new session.
	b2 := g.browser(t)
	g.queue(&oidcUser{Sub: "g-100", Email: "Ann@gmail.com", EmailVerified: true})
	require.Equal(t, http.StatusFound, b2.google(t, "/auth/google/login").StatusCode)
	require.Equal(t, uid, b2.whoami(t))
	require.Equal(t, 1, g.count(t, "SELECT count(*) FROM users"))
	require.Equal(t, 2, g.count(t, "SELECT count(*) FROM sessions WHERE user_id = $1", uid))
}

// TestGoogleCallbackRefusals: every broken callback is a 400 (never a 500)
// that writes no user, identity or session, and is audited.
func TestGoogleCallbackRefusals(t *testing.T) {
	t.Parallel()
	person := func() *oidcUser { return &oidcUser{Sub: "g-200", Email: "bo@gmail.com", EmailVerified: true} }

	t.Run("wrong state", func(t *testing.T) {
		t.Parallel()
		g := newGoogleRig(t, true)
		b := g.browser(t)
		g.queue(person())
		cb := b.authorize(t, "/auth/google/login")
		q := cb.Query()
		q.Set("state", strings.Repeat("A", 43))
		cb.RawQuery = q.Encode()
		requireRefused(t, b.get(t, cb.String()), http.StatusBadRequest, "invalid_state")
		u, i, s := g.written(t)
		require.Zero(t, u+i+s)
		require.Equal(t, "state_mismatch", g.lastEvent(t, "login_failed").Detail["reason"])
		require.Equal(t, 1.0, g.googleLogins(t, "failure"))
	})

	t.Run("missing state", func(t *testing.T) {
		t.Parallel()
		g := newGoogleRig(t, true)
		b := g.browser(t)
		requireRefused(t, b.get(t, GoogleCallbackPath+"?code=x"), http.StatusBadRequest, "invalid_state")
		require.Equal(t, "state_missing", g.lastEvent(t, "login_failed").Detail["reason"])
	})

	t.Run("replayed state", func(t *testing.T) {
		t.Parallel()
		g := newGoogleRig(t, true)
		b := g.browser(t)
		g.queue(person())
		cb := b.authorize(t, "/auth/google/login")
		saved := b.c.Jar.Cookies(cb)
		require.Equal(t, http.StatusFound, b.get(t, cb.String()).StatusCode)
		// An attacker holding the whole callback, cookie included.
		b.c.Jar.SetCookies(cb, saved)
		requireRefused(t, b.get(t, cb.String()), http.StatusBadRequest, "invalid_state")
		require.Equal(t, "state_replayed", g.lastEvent(t, "login_failed").Detail["reason"])
		u, i, s := g.written(t)
		require.Equal(t, [3]int{1, 1, 1}, [3]int{u, i, s}, "only the first callback wrote")
	})

	t.Run("replayed code", func(t *testing.T) {
		t.Parallel()
		g := newGoogleRig(t, true)
		b := g.browser(t)
		g.queue(person())
		first := b.authorize(t, "/auth/google/login")
		require.Equal(t, http.StatusFound, b.get(t, first.String()).StatusCode)
		// A fresh, valid state, but the code already redeemed.
		g.queue(person())
		second := b.authorize(t, "/auth/google/login")
		q := second.Query()
		q.Set("code", first.Query().Get("code"))
		second.RawQuery = q.Encode()
		requireRefused(t, b.get(t, second.String()), http.StatusBadRequest, "invalid_code")
		u, i, s := g.written(t)
		require.Equal(t, [3]int{1, 1, 1}, [3]int{u, i, s})
	})

	t.Run("token for another audience", func(t *testing.T) {
		t.Parallel()
		g := newGoogleRig(t, true)
		b := g.browser(t)
		p := person()
		p.Audience = "another-client.apps.googleusercontent.com"
		g.queue(p)
		requireRefused(t, b.google(t, "/auth/google/login"), http.StatusBadRequest, "invalid_id_token")
		u, i, s := g.written(t)
		require.Zero(t, u+i+s)
		require.Equal(t, "id_token_invalid", g.lastEvent(t, "login_failed").Detail["reason"])
	})

	t.Run("nonce of another flow", func(t *testing.T) {
		t.Parallel()
		g := newGoogleRig(t, true)
		b := g.browser(t)
		p := person()
		p.Nonce = strings.Repeat("n", 43)
		g.queue(p)
		requireRefused(t, b.google(t, "/auth/google/login"), http.StatusBadRequest, "invalid_id_token")
		u, i, s := g.written(t)
		require.Zero(t, u+i+s)
	})

	t.Run("expired state", func(t *testing.T) {
		t.Parallel()
		g := newGoogleRig(t, true)
		b := g.browser(t)
		g.queue(person())
		cb := b.authorize(t, "/auth/google/login")
		g.clock.Advance(oidcStateTTL + time.Second)
		requireRefused(t, b.get(t, cb.String()), http.StatusBadRequest, "invalid_state")
		require.Equal(t, "state_expired", g.lastEvent(t, "login_failed").Detail["reason"])
	})

	t.Run("provider error access_denied", func(t *testing.T) {
		t.Parallel()
		g := newGoogleRig(t, true)
		b := g.browser(t)
		g.queue(person())
		cb := b.authorize(t, "/auth/google/login")
		// What Google sends when the person clicks "Cancel".
		denied := g.public.URL + GoogleCallbackPath + "?error=access_denied&state=" + url.QueryEscape(cb.Query().Get("state"))
		requireRefused(t, b.get(t, denied), http.StatusBadRequest, "provider_error")
		ev := g.lastEvent(t, "login_failed")
		require.Equal(t, "provider_error", ev.Detail["reason"])
		require.Equal(t, "access_denied", ev.Detail["provider_error"])
		// The flow is burnt: its code cannot finish it afterwards.
		requireRefused(t, b.get(t, cb.String()), http.StatusBadRequest, "invalid_state")
		u, i, s := g.written(t)
		require.Zero(t, u+i+s)
	})

	t.Run("tampered state cookie", func(t *testing.T) {
		t.Parallel()
		g := newGoogleRig(t, true)
		b := g.browser(t)
		g.queue(person())
		cb := b.authorize(t, "/auth/google/login")
		var cookies []*http.Cookie
		for _, c := range b.c.Jar.Cookies(cb) {
			if c.Name == oidcStateCookie {
				v := []byte(c.Value)
				if mid := len(v) / 2; v[mid] == 'A' {
					v[mid] = 'B'
				} else {
					v[mid] = 'A'
				}
				c.Value = string(v)
			}
			cookies = append(cookies, c)
		}
		b.c.Jar.SetCookies(cb, cookies)
		requireRefused(t, b.get(t, cb.String()), http.StatusBadRequest, "invalid_state")
		require.Equal(t, "state_invalid", g.lastEvent(t, "login_failed").Detail["reason"])
		u, i, s := g.written(t)
		require.Zero(t, u+i+s)
	})

	t.Run("callback in another browser", func(t *testing.T) {
		t.Parallel()
		// Login CSRF: the victim's browser has no state cookie for the
		// attacker's code.
		g := newGoogleRig(t, true)
		g.queue(person())
		cb := g.browser(t).authorize(t, "/auth/google/login")
		requireRefused(t, g.browser(t).get(t, cb.String()), http.StatusBadRequest, "invalid_state")
		u, i, s := g.written(t)
		require.Zero(t, u+i+s)
	})
}

// TestGoogleEmailOfPasswordAccount: a first Google login whose email
// belongs to a password account never enters it, verified or not, and
// sends the person to log in with the password and link from there.
func TestGoogleEmailOfPasswordAccount(t *testing.T) {
	t.Parallel()
	for name, p := range map[string]*oidcUser{
		"unverified":           {Sub: "g-300", Email: "CAROL@example.com"},
		"verified gmail":       {Sub: "g-301", Email: "carol@gmail.com", EmailVerified: true},
		"verified workspace":   {Sub: "g-302", Email: "carol@corp.example", EmailVerified: true, HD: "corp.example"},
		"unverified workspace": {Sub: "g-303", Email: "carol@corp.example", HD: "corp.example"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := newGoogleRig(t, true)
			local := strings.ToLower(p.Email)
			owner := g.browser(t).signup(t, local)

			attacker := g.browser(t)
			g.queue(p)
			rep := attacker.google(t, "/auth/google/login")
			require.Equal(t, http.StatusFound, rep.StatusCode, rep.body)
			require.Equal(t, googleLinkRequiredURL, rep.Header.Get("Location"))
			require.Empty(t, rep.setCookie(CookieName))
			require.Empty(t, attacker.whoami(t))
			require.Zero(t, g.count(t, "SELECT count(*) FROM user_identities"))
			require.Equal(t, 1, g.count(t, "SELECT count(*) FROM users"))
			require.Equal(t, 1, g.count(t, "SELECT count(*) FROM sessions"), "only the owner's signup session")
			ev := g.lastEvent(t, "login_failed")
			require.Equal(t, "link_required", ev.Detail["reason"])
			require.Equal(t, owner, ev.UserID)
		})
	}
}

// TestGoogleLinkByVerifiedEmail: the one case where a new Google identity
// enters an existing account by email — Google verified and is
// authoritative for the address, and the account's email is verified (an
// account Google created). A non-authoritative claim to the same address
// is refused.
func TestGoogleLinkByVerifiedEmail(t *testing.T) {
	t.Parallel()
	g := newGoogleRig(t, true)
	b := g.browser(t)
	g.queue(&oidcUser{Sub: "g-400", Email: "dan@corp.example", EmailVerified: true, HD: "corp.example"})
	require.Equal(t, http.StatusFound, b.google(t, "/auth/google/login").StatusCode)
	uid := b.whoami(t)
	require.NotEmpty(t, uid)

	other := g.browser(t)
	g.queue(&oidcUser{Sub: "g-401", Email: "DAN@corp.example", EmailVerified: true, HD: "corp.example"})
	rep := other.google(t, "/auth/google/login")
	require.Equal(t, "/", rep.Header.Get("Location"), rep.body)
	require.Equal(t, uid, other.whoami(t))
	ev := g.lastEvent(t, "identity_linked")
	require.Equal(t, uid, ev.UserID)
	require.Equal(t, "email", ev.Detail["via"])

	third := g.browser(t)
	g.queue(&oidcUser{Sub: "g-402", Email: "dan@corp.example", EmailVerified: true}) // no hd
	rep = third.google(t, "/auth/google/login")
	require.Equal(t, googleLinkRequiredURL, rep.Header.Get("Location"))
	require.Empty(t, third.whoami(t))
	require.Equal(t, 2, g.count(t, "SELECT count(*) FROM user_identities WHERE user_id = $1", uid))
}

// TestGoogleExplicitLink: a logged-in password user links Google through
// /auth/google/link; afterwards Google logs into that account. The same
// Google account cannot then be linked to someone else (409).
func TestGoogleExplicitLink(t *testing.T) {
	t.Parallel()
	g := newGoogleRig(t, true)

	require.Equal(t, http.StatusUnauthorized, g.browser(t).get(t, "/auth/google/link").StatusCode)

	erin := g.browser(t)
	erinID := erin.signup(t, "erin@example.com")
	// Google's email differs from the account's: an explicit link needs
	// no email match, the live session is the proof.
	g.queue(&oidcUser{Sub: "g-500", Email: "erin.personal@gmail.com", EmailVerified: true})
	rep := erin.google(t, "/auth/google/link")
	require.Equal(t, http.StatusFound, rep.StatusCode, rep.body)
	require.Equal(t, "/", rep.Header.Get("Location"))
	require.Equal(t, 1, g.count(t, "SELECT count(*) FROM user_identities WHERE subject = 'g-500' AND user_id = $1", erinID))
	ev := g.lastEvent(t, "identity_linked")
	require.Equal(t, erinID, ev.UserID)
	require.Equal(t, "session", ev.Detail["via"])
	require.Equal(t, erinID, erin.whoami(t), "linking keeps the session")

	// Google now logs into Erin's account from anywhere.
	elsewhere := g.browser(t)
	g.queue(&oidcUser{Sub: "g-500", Email: "erin.personal@gmail.com", EmailVerified: true})
	require.Equal(t, "/", elsewhere.google(t, "/auth/google/login").Header.Get("Location"))
	require.Equal(t, erinID, elsewhere.whoami(t))

	// Frank cannot take the same Google account.
	frank := g.browser(t)
	frankID := frank.signup(t, "frank@example.com")
	g.queue(&oidcUser{Sub: "g-500", Email: "erin.personal@gmail.com", EmailVerified: true})
	rep = frank.google(t, "/auth/google/link")
	require.Equal(t, http.StatusConflict, rep.StatusCode, rep.body)
	require.Equal(t, "identity_taken", rep.json(t)["error"])
	require.Zero(t, g.count(t, "SELECT count(*) FROM user_identities WHERE user_id = $1", frankID))
	require.Equal(t, "identity_taken", g.lastEvent(t, "login_failed").Detail["reason"])
}

// TestGoogleLinkAfterLogout: a link flow whose session ended before the
// callback links nothing.
func TestGoogleLinkAfterLogout(t *testing.T) {
	t.Parallel()
	g := newGoogleRig(t, true)
	b := g.browser(t)
	uid := b.signup(t, "gil@example.com")
	g.queue(&oidcUser{Sub: "g-600", Email: "gil@gmail.com", EmailVerified: true})
	cb := b.authorize(t, "/auth/google/link")
	_, err := g.store.RevokeUser(context.Background(), uid, sessions.Revocation{Reason: sessions.ReasonLogoutAll})
	require.NoError(t, err)
	rep := b.get(t, cb.String())
	require.Equal(t, http.StatusUnauthorized, rep.StatusCode, rep.body)
	require.Zero(t, g.count(t, "SELECT count(*) FROM user_identities"))
}

// TestGoogleReturningUserChangedEmail: identities are keyed by (google,
// sub), so a person whose Google email changed keeps their account — and
// the new email is no way into anyone else's.
func TestGoogleReturningUserChangedEmail(t *testing.T) {
	t.Parallel()
	g := newGoogleRig(t, true)
	first := g.browser(t)
	g.queue(&oidcUser{Sub: "g-700", Email: "hal@gmail.com", EmailVerified: true})
	require.Equal(t, http.StatusFound, first.google(t, "/auth/google/login").StatusCode)
	uid := first.whoami(t)

	later := g.browser(t)
	g.queue(&oidcUser{Sub: "g-700", Email: "hal.new@gmail.com", EmailVerified: true})
	require.Equal(t, "/", later.google(t, "/auth/google/login").Header.Get("Location"))
	require.Equal(t, uid, later.whoami(t))
	require.Equal(t, 1, g.count(t, "SELECT count(*) FROM users"))

	// The account keeps the email it was created with.
	var email string
	require.NoError(t, g.pool.QueryRow(context.Background(), "SELECT email FROM users WHERE id = $1", uid).Scan(&email))
	require.Equal(t, "hal@gmail.com", email)
}

// TestGoogleDisabled: without GOOGLE_CLIENT_ID every Google route is 404.
func TestGoogleDisabled(t *testing.T) {
	t.Parallel()
	g := newGoogleRig(t, false)
	b := g.browser(t)
	for _, p := range []string{"/auth/google/login", GoogleCallbackPath + "?state=x&code=y", "/auth/google/link"} {
		rep := b.get(t, p)
		require.Equal(t, http.StatusNotFound, rep.StatusCode, p)
		require.Equal(t, "not_found", rep.json(t)["error"])
	}
	require.False(t, g.srv.GoogleEnabled())
}

// TestGoogleConfigValidate: bad Google settings stop start-up with an
// error naming the variable.
func TestGoogleConfigValidate(t *testing.T) {
	t.Parallel()
	ok := GoogleConfig{ClientID: "id", ClientSecret: "secret", PublicURL: "https://hub.example"}
	require.NoError(t, ok.validate())
	require.NoError(t, GoogleConfig{}.validate(), "off is valid")
	for want, c := range map[string]GoogleConfig{
		"SESSIONHUB_OIDC_ISSUER": {ClientID: "id", ClientSecret: "s", PublicURL: "https://hub.example", Issuer: "http://idp.example"},
		"SESSIONHUB_PUBLIC_URL":  {ClientID: "id", ClientSecret: "s", PublicURL: "hub.example"},
	} {
		err := c.validate()
		require.Error(t, err)
		require.Contains(t, err.Error(), want)
	}
	loopback := ok
	loopback.Issuer = "http://127.0.0.1:5556/dex"
	require.NoError(t, loopback.validate(), "plain http is allowed towards this machine")
	dev := GoogleConfig{ClientID: "id", ClientSecret: "s", PublicURL: "http://localhost:8080", Issuer: "http://idp:8080"}
	require.NoError(t, dev.validate(), "and when sessionhub itself is on plain http")
}

// TestGoogleMemoryMode: without Postgres and Redis for users, audit and
// the used-state set (embedded mode), login and replay refusal still hold.
func TestGoogleMemoryMode(t *testing.T) {
	t.Parallel()
	g := newGoogleRig(t, true, func(c *Config, d *Deps) {
		mem := sessions.NewMemory(c.Now)
		store, err := sessions.New(sessions.Config{Now: c.Now}, mem, mem, mem)
		require.NoError(t, err)
		d.Store, d.Pool, d.Redis = store, nil, nil
	})
	b := g.browser(t)
	g.queue(&oidcUser{Sub: "g-800", Email: "ivy@gmail.com", EmailVerified: true})
	cb := b.authorize(t, "/auth/google/login")
	saved := b.c.Jar.Cookies(cb)
	rep := b.get(t, cb.String())
	require.Equal(t, "/", rep.Header.Get("Location"), rep.body)
	uid := b.whoami(t)
	require.NotEmpty(t, uid)
	id, err := g.srv.Users().IdentityBySubject(context.Background(), googleProvider, "g-800")
	require.NoError(t, err)
	require.Equal(t, uid, id.UserID)

	b.c.Jar.SetCookies(cb, saved)
	requireRefused(t, b.get(t, cb.String()), http.StatusBadRequest, "invalid_state")
}

// TestGoogleAcrossNodes: a login started on one node finishes on another
// (the state cookie is sealed with a key every node derives from the
// client secret), and its replay is refused on the first node too (the
// used-state set is in the shared Redis).
func TestGoogleAcrossNodes(t *testing.T) {
	t.Parallel()
	g := newGoogleRig(t, true)
	nodeA := g.hBundle
	nodeB := hNode(t, g.rdb, g.prefix, g.pool, g.clock, g.googleOpt)
	b := g.browser(t)
	g.queue(&oidcUser{Sub: "g-900", Email: "jo@gmail.com", EmailVerified: true})

	cb := b.authorize(t, "/auth/google/login") // on node A
	saved := b.c.Jar.Cookies(cb)
	g.route(nodeB)
	rep := b.get(t, cb.String())
	require.Equal(t, "/", rep.Header.Get("Location"), rep.body)
	require.NotEmpty(t, b.whoami(t))

	g.route(nodeA)
	b.c.Jar.SetCookies(cb, saved)
	requireRefused(t, b.get(t, cb.String()), http.StatusBadRequest, "invalid_state")
	require.Equal(t, "state_replayed", g.lastEvent(t, "login_failed").Detail["reason"])
	u, i, s := g.written(t)
	require.Equal(t, [3]int{1, 1, 1}, [3]int{u, i, s})
}
