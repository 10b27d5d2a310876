package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// DefaultOIDCIssuer is Google's issuer, used when GoogleConfig.Issuer is
// empty.
const DefaultOIDCIssuer = "https://accounts.google.com"

// GoogleCallbackPath is the redirect URI path registered with the provider.
const GoogleCallbackPath = "/auth/google/callback"

// oidcHTTPTimeout bounds every call to the provider (discovery, token
// exchange, JWKS) so a slow provider costs one request, not a hung handler.
const oidcHTTPTimeout = 10 * time.Second

// oidcRediscoverAfter spaces discovery retries after a failure, so an
// unreachable provider is not hammered by every login click.
const oidcRediscoverAfter = 5 * time.Second

// Errors of the provider side of the flow; each is a 400 at the callback
// except ErrOIDCUnavailable (503).
var (
	// ErrOIDCExchange means the code was refused (bad, expired, replayed,
	// or the PKCE verifier did not match).
	ErrOIDCExchange = errors.New("auth: oidc code exchange refused")
	// ErrOIDCIDToken means the ID token failed verification (signature,
	// iss, aud, azp, exp, nonce, or a missing subject).
	ErrOIDCIDToken = errors.New("auth: oidc id token invalid")
	// ErrOIDCUnavailable means discovery or the token endpoint could not
	// be reached.
	ErrOIDCUnavailable = errors.New("auth: oidc provider unavailable")
)

// GoogleConfig enables Google login. The zero value (empty ClientID)
// leaves it off: its routes answer 404.
type GoogleConfig struct {
	// ClientID and ClientSecret are the OAuth web client's credentials.
	ClientID     string
	ClientSecret string
	// Issuer is the OIDC issuer; empty means DefaultOIDCIssuer. Tests
	// point it at a local provider.
	Issuer string
	// PublicURL is SESSIONHUB_PUBLIC_URL; the redirect URI is PublicURL +
	// GoogleCallbackPath. Empty means the Server's Config.PublicURL.
	PublicURL string
	// HTTPClient talks to the provider; nil means a client with a 10 s
	// timeout.
	HTTPClient *http.Client
}

// Enabled reports whether Google login is configured.
func (c GoogleConfig) Enabled() bool { return c.ClientID != "" }

// validate checks the configuration once, at construction.
func (c GoogleConfig) validate() error {
	if !c.Enabled() {
		return nil
	}
	iss := c.issuer()
	u, err := url.Parse(iss)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("auth: SESSIONHUB_OIDC_ISSUER %q is not an absolute URL", iss)
	}
	p, err := url.Parse(c.PublicURL)
	if err != nil || p.Host == "" || (p.Scheme != "https" && p.Scheme != "http") {
		return fmt.Errorf("auth: SESSIONHUB_PUBLIC_URL %q is not an absolute http(s) URL", c.PublicURL)
	}
	// OIDC requires https. Plain http is accepted only towards this
	// machine, or when sessionhub itself is served over plain http (a
	// development or test setup, where nothing is on TLS anyway).
	if u.Scheme != "https" && (u.Scheme != "http" || !(loopbackHost(u.Hostname()) || p.Scheme == "http")) {
		return fmt.Errorf("auth: SESSIONHUB_OIDC_ISSUER %q must use https", iss)
	}
	return nil
}

func (c GoogleConfig) issuer() string {
	if c.Issuer == "" {
		return DefaultOIDCIssuer
	}
	return c.Issuer
}

func (c GoogleConfig) redirectURL() string {
	return strings.TrimSuffix(c.PublicURL, "/") + GoogleCallbackPath
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// googleClaims are the ID token claims sessionhub uses.
type googleClaims struct {
	Subject       string       `json:"sub"`
	Email         string       `json:"email"`
	EmailVerified flexibleBool `json:"email_verified"`
	HostedDomain  string       `json:"hd"`
	Name          string       `json:"name"`
	AuthorizedTo  string       `json:"azp"`
}

// flexibleBool accepts true and "true": Google has sent email_verified as
// a string in some token versions.
type flexibleBool bool

func (b *flexibleBool) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch t := v.(type) {
	case bool:
		*b = flexibleBool(t)
	case string:
		*b = flexibleBool(strings.EqualFold(t, "true"))
	default:
		*b = false
	}
	return nil
}

// authoritative reports whether the provider speaks for the email address:
// Google owns @gmail.com, and a Workspace domain named in hd owns its
// addresses. Anything else is an address Google merely saw once.
func (c *googleClaims) authoritative() bool {
	at := strings.LastIndexByte(c.Email, '@')
	if at < 0 {
		return false
	}
	domain := strings.ToLower(c.Email[at+1:])
	if domain == "gmail.com" {
		return true
	}
	return c.HostedDomain != "" && strings.EqualFold(domain, c.HostedDomain)
}

// oidcClient runs the provider side of the authorization-code flow:
// discovery, the authorization URL with state, nonce and PKCE, the code
// exchange and ID token verification. It knows nothing of users or
// sessions; the Server decides what a verified identity means.
type oidcClient struct {
	cfg   GoogleConfig
	codec *oidcCodec
	used  usedStates
	hc    *http.Client
	now   func() time.Time
	log   *slog.Logger

	mu       sync.Mutex
	provider *oidc.Provider
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
	failedAt time.Time
}

func newOIDCClient(cfg GoogleConfig, used usedStates, now func() time.Time, log *slog.Logger) (*oidcClient, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.ClientSecret == "" {
		// A public client (PKCE only) works, but the secret also keys the
		// state cookie: without it each node seals with its own random key
		// and a login must finish on the node that started it.
		log.Warn("auth: GOOGLE_CLIENT_SECRET is empty: Google logins must finish on the node that started them")
	}
	codec, err := newOIDCCodec([]byte(cfg.ClientSecret))
	if err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: oidcHTTPTimeout}
	}
	return &oidcClient{cfg: cfg, codec: codec, used: used, hc: hc, now: now, log: log}, nil
}

// discover fetches the provider metadata on first use rather than at
// start-up, so a node boots even while the provider is unreachable; a
// failure is retried after oidcRediscoverAfter.
func (c *oidcClient) discover(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.oauth, c.verifier, nil
	}
	if !c.failedAt.IsZero() && c.now().Sub(c.failedAt) < oidcRediscoverAfter {
		return nil, nil, ErrOIDCUnavailable
	}
	// Detached from the request: one impatient client must not turn into
	// a failed discovery for everyone else.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), oidcHTTPTimeout)
	defer cancel()
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, c.hc), c.cfg.issuer())
	if err != nil {
		c.failedAt = c.now()
		c.log.Error("oidc discovery failed", "issuer", c.cfg.issuer(), "err", err)
		return nil, nil, fmt.Errorf("%w: discovery: %w", ErrOIDCUnavailable, err)
	}
	c.provider = p
	c.oauth = &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  c.cfg.redirectURL(),
		Scopes:       []string{oidc.ScopeOpenID, "email", "profile"},
	}
	c.verifier = p.Verifier(&oidc.Config{ClientID: c.cfg.ClientID, Now: c.now})
	return c.oauth, c.verifier, nil
}

// begin starts a flow: it returns the provider URL to redirect to and the
// cookie that remembers the flow.
func (c *oidcClient) begin(ctx context.Context, mode, userID, sessionID string) (string, *http.Cookie, error) {
	oc, _, err := c.discover(ctx)
	if err != nil {
		return "", nil, err
	}
	f, err := newOIDCFlow(mode, c.now())
	if err != nil {
		return "", nil, err
	}
	f.UserID, f.SessionID = userID, sessionID
	sealed, err := c.codec.seal(f)
	if err != nil {
		return "", nil, err
	}
	u := oc.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier))
	return u, oidcStateCookieFor(sealed), nil
}

// consume validates the callback's state against the cookie and burns it.
// Whatever it returns, the caller clears the cookie.
func (c *oidcClient) consume(ctx context.Context, r *http.Request) (*oidcFlow, error) {
	var value string
	if ck, err := r.Cookie(oidcStateCookie); err == nil {
		value = ck.Value
	}
	now := c.now()
	f, err := c.codec.check(value, r.URL.Query().Get("state"), now)
	if err != nil {
		return nil, err
	}
	ttl := time.Unix(f.Expires, 0).Sub(now)
	first, err := c.used.markUsed(ctx, f.State, ttl)
	if err != nil {
		// Redis down: the per-node fallback answered; note it and go on.
		c.log.Warn("oidc used-state store degraded", "err", err)
	}
	if !first {
		return nil, ErrOIDCStateReplayed
	}
	return f, nil
}

// complete exchanges the callback's code with the flow's PKCE verifier
// and verifies the ID token, nonce included.
func (c *oidcClient) complete(ctx context.Context, f *oidcFlow, code string) (*googleClaims, error) {
	if code == "" {
		return nil, fmt.Errorf("%w: no code", ErrOIDCExchange)
	}
	oc, verifier, err := c.discover(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, oidcHTTPTimeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.hc)
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("%w: %s", ErrOIDCExchange, re.ErrorCode)
		}
		return nil, fmt.Errorf("%w: exchange: %w", ErrOIDCUnavailable, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, fmt.Errorf("%w: no id_token in the token response", ErrOIDCIDToken)
	}
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOIDCIDToken, err)
	}
	// go-oidc leaves the nonce to the caller. Compare digests so the
	// comparison is constant-time whatever the lengths.
	want, got := sha256.Sum256([]byte(f.Nonce)), sha256.Sum256([]byte(idt.Nonce))
	if idt.Nonce == "" || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return nil, fmt.Errorf("%w: nonce mismatch", ErrOIDCIDToken)
	}
	var cl googleClaims
	if err := idt.Claims(&cl); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrOIDCIDToken, err)
	}
	if cl.Subject == "" {
		return nil, fmt.Errorf("%w: no subject", ErrOIDCIDToken)
	}
	// OIDC Core 3.1.3.7: with several audiences, azp must name us.
	if len(idt.Audience) > 1 && cl.AuthorizedTo != c.cfg.ClientID {
		return nil, fmt.Errorf("%w: azp %q is not this client", ErrOIDCIDToken, cl.AuthorizedTo)
	}
	cl.Email = strings.TrimSpace(cl.Email)
	return &cl, nil
}
