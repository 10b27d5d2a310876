package auth

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// flowRig runs oidcClient behind two bare handlers (begin at /start,
// consume+complete at the callback) against a real provider: the provider
// side of the flow without users or sessions.
type flowRig struct {
	rp      *httptest.Server
	browser *http.Client
}

func newFlowRig(t *testing.T) (*flowRig, func(u *oidcUser)) {
	t.Helper()
	m := startProvider(t)
	late := &lateHandler{}
	rp := httptest.NewServer(late)
	t.Cleanup(rp.Close)
	c, err := newOIDCClient(GoogleConfig{
		ClientID: m.ClientID, ClientSecret: m.ClientSecret, Issuer: m.Issuer(),
		PublicURL: rp.URL, HTTPClient: providerClient(t),
	}, newMemoryUsedStates(time.Now), time.Now, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		u, ck, err := c.begin(r.Context(), oidcModeLogin, "", "")
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		http.SetCookie(w, ck)
		http.Redirect(w, r, u, http.StatusFound)
	})
	mux.HandleFunc(GoogleCallbackPath, func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, oidcClearCookie())
		f, err := c.consume(r.Context(), r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		cl, err := c.complete(r.Context(), f, r.URL.Query().Get("code"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(cl)
	})
	late.set(mux)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	browser := &http.Client{Jar: jar, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	return &flowRig{rp: rp, browser: browser}, func(u *oidcUser) { m.QueueUser(u) }
}

func (r *flowRig) get(t *testing.T, u string) *http.Response {
	t.Helper()
	resp, err := r.browser.Get(u)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestOIDCFlowProvider checks the provider side alone: the authorization
// request carries state, nonce and S256 PKCE, the code exchange succeeds
// only with the verifier, and the verified claims come back.
func TestOIDCFlowProvider(t *testing.T) {
	t.Parallel()
	rig, queue := newFlowRig(t)
	queue(&oidcUser{Sub: "sub-1", Email: "a@gmail.com", EmailVerified: true, Name: "A"})

	resp := rig.get(t, rig.rp.URL+"/start")
	require.Equal(t, http.StatusFound, resp.StatusCode)
	authURL, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	q := authURL.Query()
	require.Equal(t, "S256", q.Get("code_challenge_method"))
	require.NotEmpty(t, q.Get("code_challenge"))
	require.GreaterOrEqual(t, len(q.Get("state")), 22) // ≥ 128 bits base64url
	require.GreaterOrEqual(t, len(q.Get("nonce")), 22)
	require.Equal(t, "openid email profile", q.Get("scope"))
	require.Equal(t, rig.rp.URL+GoogleCallbackPath, q.Get("redirect_uri"))
	setCookie := resp.Header.Get("Set-Cookie")
	require.Contains(t, setCookie, oidcStateCookie+"=")
	for _, attr := range []string{"Path=/", "Max-Age=600", "HttpOnly", "Secure", "SameSite=Lax"} {
		require.Contains(t, setCookie, attr)
	}
	require.NotContains(t, setCookie, "Domain")

	resp = rig.get(t, authURL.String())
	require.Equal(t, http.StatusFound, resp.StatusCode)
	cb := resp.Header.Get("Location")
	require.True(t, strings.HasPrefix(cb, rig.rp.URL+GoogleCallbackPath+"?"))

	resp = rig.get(t, cb)
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var cl googleClaims
	require.NoError(t, json.Unmarshal(body, &cl))
	require.Equal(t, "sub-1", cl.Subject)
	require.Equal(t, "a@gmail.com", cl.Email)
	require.True(t, bool(cl.EmailVerified))
	require.True(t, cl.authoritative())
}

// authorize walks /start and the provider's authorization endpoint and
// returns the callback URL the provider redirected to (not yet visited).
func (r *flowRig) authorize(t *testing.T) *url.URL {
	t.Helper()
	resp := r.get(t, r.rp.URL+"/start")
	require.Equal(t, http.StatusFound, resp.StatusCode)
	resp = r.get(t, resp.Header.Get("Location"))
	require.Equal(t, http.StatusFound, resp.StatusCode)
	cb, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	return cb
}

func (r *flowRig) status(t *testing.T, u string) (int, string) {
	t.Helper()
	resp := r.get(t, u)
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestOIDCFlowRefusals covers what the provider side refuses before any
// user is looked at.
func TestOIDCFlowRefusals(t *testing.T) {
	t.Parallel()

	t.Run("wrong state", func(t *testing.T) {
		t.Parallel()
		rig, _ := newFlowRig(t)
		cb := rig.authorize(t)
		q := cb.Query()
		q.Set("state", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		cb.RawQuery = q.Encode()
		code, body := rig.status(t, cb.String())
		require.Equal(t, http.StatusBadRequest, code)
		require.Contains(t, body, ErrOIDCStateMismatch.Error())
	})

	t.Run("replayed callback", func(t *testing.T) {
		t.Parallel()
		rig, _ := newFlowRig(t)
		cb := rig.authorize(t)
		// Keep the state cookie to present it again after the first
		// callback cleared it from the jar.
		saved := rig.browser.Jar.Cookies(cb)
		code, body := rig.status(t, cb.String())
		require.Equal(t, http.StatusOK, code, body)
		rig.browser.Jar.SetCookies(cb, saved)
		code, body = rig.status(t, cb.String())
		require.Equal(t, http.StatusBadRequest, code)
		require.Contains(t, body, ErrOIDCStateReplayed.Error())
	})

	t.Run("tampered cookie", func(t *testing.T) {
		t.Parallel()
		rig, _ := newFlowRig(t)
		cb := rig.authorize(t)
		var jarred []*http.Cookie
		for _, c := range rig.browser.Jar.Cookies(cb) {
			if c.Name == oidcStateCookie {
				b := []byte(c.Value)
				if mid := len(b) / 2; b[mid] == 'A' {
					b[mid] = 'B'
				} else {
					b[mid] = 'A'
				}
				c.Value = string(b)
			}
			jarred = append(jarred, c)
		}
		rig.browser.Jar.SetCookies(cb, jarred)
		code, body := rig.status(t, cb.String())
		require.Equal(t, http.StatusBadRequest, code)
		require.Contains(t, body, ErrOIDCStateInvalid.Error())
	})

	t.Run("no cookie", func(t *testing.T) {
		t.Parallel()
		rig, _ := newFlowRig(t)
		cb := rig.authorize(t)
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		rig.browser.Jar = jar
		code, body := rig.status(t, cb.String())
		require.Equal(t, http.StatusBadRequest, code)
		require.Contains(t, body, ErrOIDCStateMissing.Error())
	})

	t.Run("token for another audience", func(t *testing.T) {
		t.Parallel()
		rig, queue := newFlowRig(t)
		queue(&oidcUser{Sub: "s", Email: "x@gmail.com", EmailVerified: true, Audience: "someone-else"})
		code, body := rig.status(t, rig.authorize(t).String())
		require.Equal(t, http.StatusBadRequest, code)
		require.Contains(t, body, ErrOIDCIDToken.Error())
		require.Contains(t, body, "audience")
	})

	t.Run("bad code", func(t *testing.T) {
		t.Parallel()
		rig, _ := newFlowRig(t)
		cb := rig.authorize(t)
		q := cb.Query()
		q.Set("code", "not-a-code")
		cb.RawQuery = q.Encode()
		code, body := rig.status(t, cb.String())
		require.Equal(t, http.StatusBadRequest, code)
		require.Contains(t, body, ErrOIDCExchange.Error())
	})
}

// TestOIDCCodec checks the sealed cookie on its own: round trip, expiry,
// and that a cookie sealed under another secret is refused.
func TestOIDCCodec(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	a, err := newOIDCCodec([]byte("secret-a"))
	require.NoError(t, err)
	b, err := newOIDCCodec([]byte("secret-b"))
	require.NoError(t, err)
	f, err := newOIDCFlow(oidcModeLink, now)
	require.NoError(t, err)
	f.UserID, f.SessionID = "u", "s"
	v, err := a.seal(f)
	require.NoError(t, err)

	got, err := a.check(v, f.State, now)
	require.NoError(t, err)
	require.Equal(t, f, got)

	_, err = b.open(v, now)
	require.ErrorIs(t, err, ErrOIDCStateInvalid)
	_, err = a.open(v, now.Add(oidcStateTTL))
	require.ErrorIs(t, err, ErrOIDCStateExpired)
	_, err = a.check(v, "", now)
	require.ErrorIs(t, err, ErrOIDCStateMismatch)
	_, err = a.open("", now)
	require.ErrorIs(t, err, ErrOIDCStateMissing)
	_, err = a.open(v[:len(v)-2], now)
	require.ErrorIs(t, err, ErrOIDCStateInvalid)
}

// TestGoogleAuthoritative pins the linking policy's notion of an address
// Google speaks for.
func TestGoogleAuthoritative(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		email, hd string
		want      bool
	}{
		{"a@gmail.com", "", true},
		{"a@GMail.com", "", true},
		{"a@corp.example", "corp.example", true},
		{"a@corp.example", "other.example", false},
		{"a@corp.example", "", false},
		{"a@gmail.com.evil.example", "", false},
		{"no-at-sign", "", false},
	} {
		c := googleClaims{Email: tc.email, HostedDomain: tc.hd}
		require.Equal(t, tc.want, c.authoritative(), "%s hd=%q", tc.email, tc.hd)
	}
}
