package auth

import (
	"net"
	"net/http"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
	"github.com/stretchr/testify/require"
)

// oidcUser is a person at the test provider. It implements mockoidc.User
// so a test can set every claim Google sends (hd included, which
// mockoidc.MockUser lacks) and, for the wrong-audience case, have the
// provider issue the ID token to another client.
type oidcUser struct {
	Sub           string
	Email         string
	EmailVerified bool
	HD            string
	Name          string
	// Audience, when set, replaces the client id in the ID token's aud.
	Audience string
	// Nonce, when set, replaces the nonce the client sent (an ID token
	// minted for another flow).
	Nonce string
}

func (u *oidcUser) ID() string { return u.Sub }

func (u *oidcUser) Userinfo([]string) ([]byte, error) {
	return []byte(`{"sub":"` + u.Sub + `"}`), nil
}

func (u *oidcUser) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	rc := base.RegisteredClaims
	aud := []string(rc.Audience)
	if u.Audience != "" {
		aud = []string{u.Audience}
	}
	c := jwt.MapClaims{
		"iss":            rc.Issuer,
		"sub":            rc.Subject,
		"aud":            aud,
		"exp":            rc.ExpiresAt.Unix(),
		"iat":            rc.IssuedAt.Unix(),
		"nbf":            rc.NotBefore.Unix(),
		"jti":            rc.ID,
		"email":          u.Email,
		"email_verified": u.EmailVerified,
	}
	if base.Nonce != "" {
		c["nonce"] = base.Nonce
	}
	if u.Nonce != "" {
		c["nonce"] = u.Nonce
	}
	if u.HD != "" {
		c["hd"] = u.HD
	}
	if u.Name != "" {
		c["name"] = u.Name
	}
	return c, nil
}

// startProvider runs a real OIDC provider (oauth2-proxy/mockoidc: discovery,
// JWKS, authorization endpoint with PKCE, token endpoint) on 127.0.0.1 for
// one test.
func startProvider(t *testing.T) *mockoidc.MockOIDC {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	require.NoError(t, err)
	// S256 only: a client that fell back to "plain" would be refused.
	m.CodeChallengeMethodsSupported = []string{mockoidc.CodeChallengeMethodS256}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, m.Start(ln, nil))
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

// providerClient is the HTTP client sessionhub uses towards the provider
// in tests: its own transport, so no keep-alive goroutine outlives the test.
func providerClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: oidcHTTPTimeout}
}
