package auth

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/sessions"
)

const testIssuer = "https://sessionhub.test"

// tokensClock is a manual clock: tests move time instead of sleeping.
type tokensClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTokensClock() *tokensClock {
	return &tokensClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *tokensClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *tokensClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// jwtFixture is a Tokens with its key, clock and a session to mint for.
type jwtFixture struct {
	tokens *Tokens
	keys   *KeySet
	clock  *tokensClock
	sess   *sessions.Session
}

func newJWTFixture(t testing.TB) *jwtFixture {
	t.Helper()
	keys, err := EphemeralKeySet()
	require.NoError(t, err)
	clock := newTokensClock()
	tokens, err := NewTokens(TokenConfig{Issuer: testIssuer, Now: clock.Now}, keys)
	require.NoError(t, err)
	return &jwtFixture{tokens: tokens, keys: keys, clock: clock, sess: &sessions.Session{
		ID:        sessions.RandomString(16),
		UserID:    "8c1d7c4e-0b5a-4f43-9a39-5d1b8f1f2a10",
		Kind:      sessions.KindBrowser,
		Scopes:    []string{"sub:room:*", "pub:room:lobby"},
		CreatedAt: clock.Now().Add(-3 * time.Hour),
	}}
}

// claims returns a valid claim set at the fixture's now.
func (f *jwtFixture) claims() map[string]any {
	now := f.clock.Now().Unix()
	return map[string]any{
		"iss": testIssuer, "aud": DefaultAudience,
		"sub": f.sess.UserID, "sid": f.sess.ID, "scope": "sub:room:*",
		"iat": now, "nbf": now, "exp": now + 300, "jti": "jti-1",
	}
}

// header returns the header our tokens carry.
func (f *jwtFixture) header() map[string]any {
	return map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": f.keys.ActiveKID()}
}

func jwtSegment(t testing.TB, v any) string {
	t.Helper()
	out, err := json.Marshal(v)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(out)
}

// craft hand-assembles a token: header and claims as given, signature by
// sign over the signing input (nil sign: empty signature).
func craftJWT(t testing.TB, header, claims map[string]any, sign func(input []byte) []byte) string {
	t.Helper()
	input := jwtSegment(t, header) + "." + jwtSegment(t, claims)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func edSigner(key ed25519.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte { return ed25519.Sign(key, in) }
}

func hsSigner(key []byte) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(sha256.New, key)
		m.Write(in)
		return m.Sum(nil)
	}
}

func (f *jwtFixture) ours() func([]byte) []byte { return edSigner(f.keys.active) }

func attackerKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return pub, priv
}

func jwtWith(base map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(base)+len(kv)/2)
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func TestMintVerify(t *testing.T) {
	t.Parallel()
	f := newJWTFixture(t)
	tok, ttl, err := f.tokens.Mint(f.sess)
	require.NoError(t, err)
	require.Equal(t, 5*time.Minute, ttl)

	c, err := f.tokens.Verify(tok)
	require.NoError(t, err)
	now := f.clock.Now()
	require.Equal(t, f.sess.UserID, c.UserID)
	require.Equal(t, f.sess.ID, c.SessionID)
	require.Equal(t, f.sess.Scopes, c.Scopes)
	require.Empty(t, c.Service)
	require.NotEmpty(t, c.ID)
	require.True(t, c.IssuedAt.Equal(now))
	require.True(t, c.ExpiresAt.Equal(now.Add(5*time.Minute)))
	require.True(t, c.AuthTime.Equal(f.sess.CreatedAt))

	// The wire form: header and every claim of DESIGN.md / SECURITY 24.
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	var header, claims map[string]any
	raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
	require.NoError(t, json.Unmarshal(raw, &header))
	raw, _ = base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, json.Unmarshal(raw, &claims))
	require.Equal(t, map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": f.keys.ActiveKID()}, header)
	require.Equal(t, testIssuer, claims["iss"])
	require.Equal(t, "sessionhub", claims["aud"])
	require.Equal(t, f.sess.UserID, claims["sub"])
	require.Equal(t, f.sess.ID, claims["sid"])
	require.Equal(t, "sub:room:* pub:room:lobby", claims["scope"], "one space-separated string")
	require.EqualValues(t, now.Unix(), claims["iat"])
	require.EqualValues(t, now.Unix(), claims["nbf"])
	require.EqualValues(t, now.Unix()+300, claims["exp"])
	require.EqualValues(t, f.sess.CreatedAt.Unix(), claims["auth_time"])
	require.NotEmpty(t, claims["jti"])
	require.NotContains(t, claims, "svc")

	tok2, _, err := f.tokens.Mint(f.sess)
	require.NoError(t, err)
	c2, err := f.tokens.Verify(tok2)
	require.NoError(t, err)
	require.NotEqual(t, c.ID, c2.ID, "jti is unique per token")
}

func TestMintServiceSession(t *testing.T) {
	t.Parallel()
	f := newJWTFixture(t)
	svc := *f.sess
	svc.Kind, svc.Device, svc.Scopes = sessions.KindService, "thumbnailer", []string{"pub:jobs:*"}
	tok, _, err := f.tokens.Mint(&svc)
	require.NoError(t, err)
	c, err := f.tokens.Verify(tok)
	require.NoError(t, err)
	require.Equal(t, "thumbnailer", c.Service)
	require.Equal(t, []string{"pub:jobs:*"}, c.Scopes)

	// A refresh (mobile) session names a device, not a service: no svc.
	mob := *f.sess
	mob.Kind, mob.Device = sessions.KindRefresh, "Pixel 8"
	tok, _, err = f.tokens.Mint(&mob)
	require.NoError(t, err)
	c, err = f.tokens.Verify(tok)
	require.NoError(t, err)
	require.Empty(t, c.Service)
}

func TestMintEmptyScopes(t *testing.T) {
	t.Parallel()
	f := newJWTFixture(t)
	s := *f.sess
	s.Scopes = nil
	tok, _, err := f.tokens.Mint(&s)
	require.NoError(t, err)
	c, err := f.tokens.Verify(tok)
	require.NoError(t, err)
	require.Empty(t, c.Scopes)
}

func TestMintRefuses(t *testing.T) {
	t.Parallel()
	f := newJWTFixture(t)
	_, _, err := f.tokens.Mint(nil)
	require.Error(t, err)
	_, _, err = f.tokens.Mint(&sessions.Session{ID: f.sess.ID})
	require.Error(t, err)
	revoked := *f.sess
	revoked.RevokedAt = f.clock.Now()
	_, _, err = f.tokens.Mint(&revoked)
	require.Error(t, err)
}

func TestNewTokensConfig(t *testing.T) {
	t.Parallel()
	keys, err := EphemeralKeySet()
	require.NoError(t, err)
	_, err = NewTokens(TokenConfig{}, keys)
	require.ErrorContains(t, err, "issuer")
	_, err = NewTokens(TokenConfig{Issuer: testIssuer}, nil)
	require.Error(t, err)
	_, err = NewTokens(TokenConfig{Issuer: testIssuer, TTL: 301 * time.Second}, keys)
	require.ErrorContains(t, err, "TTL", "SECURITY 24: exp ≤ iat + 300")
	tk, err := NewTokens(TokenConfig{Issuer: testIssuer}, keys)
	require.NoError(t, err)
	require.Equal(t, DefaultTokenTTL, tk.TTL())
	require.Same(t, keys, tk.Keys())
}

// TestVerifyAttacks is SECURITY.md item 23: each attack is a hand-crafted
// token that must be refused. The control case shows the crafting itself
// yields tokens Verify accepts, so every refusal is the property at work.
func TestVerifyAttacks(t *testing.T) {
	t.Parallel()
	f := newJWTFixture(t)
	attPub, attPriv := attackerKey(t)
	ourPub, _ := f.keys.publicKey(f.keys.ActiveKID())
	ourX := base64.RawURLEncoding.EncodeToString(ourPub)
	attJWK := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(attPub)}
	ourJWK := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": ourX, "kid": f.keys.ActiveKID()}
	h, c := f.header(), f.claims()

	ok := craftJWT(t, h, c, f.ours())
	got, err := f.tokens.Verify(ok)
	require.NoError(t, err, "control: a hand-crafted token signed by our key verifies")
	require.Equal(t, f.sess.ID, got.SessionID)

	cases := []struct {
		name  string
		token string
		want  string // the refusal's reason, where the attack has one
	}{
		{"alg none", craftJWT(t, jwtWith(h, "alg", "none"), c, nil), "signing method none is invalid"},
		{"alg None", craftJWT(t, jwtWith(h, "alg", "None"), c, nil), ""},
		{"alg NONE", craftJWT(t, jwtWith(h, "alg", "NONE"), c, nil), ""},
		{"alg none with our signature", craftJWT(t, jwtWith(h, "alg", "none"), c, f.ours()), ""},
		{"alg missing", craftJWT(t, jwtWith(h, "alg", nil), c, f.ours()), ""},
		{"HS256 keyed with the raw public key", craftJWT(t, jwtWith(h, "alg", "HS256"), c, hsSigner(ourPub)), "signing method HS256 is invalid"},
		{"HS256 keyed with the public x", craftJWT(t, jwtWith(h, "alg", "HS256"), c, hsSigner([]byte(ourX))), ""},
		{"HS256 keyed with the JWKS", craftJWT(t, jwtWith(h, "alg", "HS256"), c, hsSigner(f.keys.PublicJWKS())), ""},
		{"HS512 keyed with the public key", craftJWT(t, jwtWith(h, "alg", "HS512"), c, hsSigner(ourPub)), ""},
		{"RS256", craftJWT(t, jwtWith(h, "alg", "RS256"), c, f.ours()), ""},
		{"ES256", craftJWT(t, jwtWith(h, "alg", "ES256"), c, f.ours()), ""},
		{"Ed25519 alg name", craftJWT(t, jwtWith(h, "alg", "Ed25519"), c, f.ours()), ""},
		{"unknown kid, our key", craftJWT(t, jwtWith(h, "kid", "not-a-kid"), c, f.ours()), "unknown kid"},
		{"unknown kid, attacker key", craftJWT(t, jwtWith(h, "kid", thumbprint(attJWK["x"].(string))), c, edSigner(attPriv)), ""},
		{"missing kid", craftJWT(t, jwtWith(h, "kid", nil), c, f.ours()), "missing kid"},
		{"empty kid", craftJWT(t, jwtWith(h, "kid", ""), c, f.ours()), ""},
		{"numeric kid", craftJWT(t, jwtWith(h, "kid", 1), c, f.ours()), ""},
		{"our kid, attacker key", craftJWT(t, h, c, edSigner(attPriv)), ""},
		{"jwk header with attacker key", craftJWT(t, jwtWith(h, "jwk", attJWK, "kid", nil), c, edSigner(attPriv)), ""},
		{"jwk header with attacker key and our kid", craftJWT(t, jwtWith(h, "jwk", attJWK), c, edSigner(attPriv)), ""},
		// Signed by OUR key: refused for the header alone.
		{"jwk header, our key", craftJWT(t, jwtWith(h, "jwk", ourJWK), c, f.ours()), "header \"jwk\" not allowed"},
		{"jku header, our key", craftJWT(t, jwtWith(h, "jku", "https://evil.test/jwks.json"), c, f.ours()), "header \"jku\" not allowed"},
		{"x5u header, our key", craftJWT(t, jwtWith(h, "x5u", "https://evil.test/cert.pem"), c, f.ours()), "header \"x5u\" not allowed"},
		{"x5c header, our key", craftJWT(t, jwtWith(h, "x5c", []string{"MIIB"}), c, f.ours()), "header \"x5c\" not allowed"},
		{"crit header, our key", craftJWT(t, jwtWith(h, "crit", []string{"exp"}, "exp", 1), c, f.ours()), "header \"crit\" not allowed"},
		{"typ JWE, our key", craftJWT(t, jwtWith(h, "typ", "JWE"), c, f.ours()), ""},
		{"tampered claims", func() string {
			p := strings.Split(craftJWT(t, h, c, f.ours()), ".")
			return p[0] + "." + jwtSegment(t, jwtWith(c, "scope", "admin")) + "." + p[2]
		}(), ""},
		{"signature of another token", func() string {
			p := strings.Split(craftJWT(t, h, jwtWith(c, "jti", "other"), f.ours()), ".")
			q := strings.Split(ok, ".")
			return q[0] + "." + q[1] + "." + p[2]
		}(), ""},
		{"truncated signature", ok[:len(ok)-4], ""},
		{"padded segments", func() string {
			p := strings.Split(ok, ".")
			return p[0] + "=." + p[1] + "." + p[2]
		}(), ""},
		{"two parts", ok[:strings.LastIndex(ok, ".")], ""},
		{"four parts", ok + ".x", ""},
		{"empty", "", ""},
		{"oversized", craftJWT(t, jwtWith(h, "pad", strings.Repeat("a", 9000)), c, f.ours()), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := f.tokens.Verify(tc.token)
			require.ErrorIs(t, err, ErrTokenInvalid)
			require.Nil(t, got)
			if tc.want != "" {
				require.ErrorContains(t, err, tc.want)
			}
		})
	}
}

// TestVerifyClaims is SECURITY.md item 24: each claim check refuses a
// token validly signed by our key.
func TestVerifyClaims(t *testing.T) {
	t.Parallel()
	f := newJWTFixture(t)
	h, c := f.header(), f.claims()
	now := f.clock.Now().Unix()
	past := func(s int64) int64 { return now - s }

	accept := []struct {
		name   string
		claims map[string]any
	}{
		{"as minted", c},
		{"exp - iat = 300", jwtWith(c, "exp", now+300)},
		{"empty scope", jwtWith(c, "scope", "")},
		{"nbf 29 s ahead (skew)", jwtWith(c, "nbf", now+29)},
		{"iat 29 s ahead (skew)", jwtWith(c, "iat", now+29, "nbf", now, "exp", now+300)},
		{"expired 29 s ago (skew)", jwtWith(c, "iat", past(329), "nbf", past(329), "exp", past(29))},
	}
	for _, tc := range accept {
		_, err := f.tokens.Verify(craftJWT(t, h, tc.claims, f.ours()))
		require.NoError(t, err, tc.name)
	}

	refuse := []struct {
		name   string
		claims map[string]any
	}{
		{"wrong iss", jwtWith(c, "iss", "https://evil.test")},
		{"iss with trailing slash", jwtWith(c, "iss", testIssuer+"/")},
		{"missing iss", jwtWith(c, "iss", nil)},
		{"wrong aud", jwtWith(c, "aud", "other-service")},
		{"missing aud", jwtWith(c, "aud", nil)},
		{"aud array of others", jwtWith(c, "aud", []string{"a", "b"})},
		{"expired beyond skew", jwtWith(c, "iat", past(331), "nbf", past(331), "exp", past(31))},
		{"expired long ago", jwtWith(c, "iat", past(3600), "nbf", past(3600), "exp", past(3300))},
		{"missing exp", jwtWith(c, "exp", nil)},
		{"exp as string", jwtWith(c, "exp", "soon")},
		{"nbf beyond skew", jwtWith(c, "nbf", now+31)},
		{"missing nbf", jwtWith(c, "nbf", nil)},
		{"iat beyond skew", jwtWith(c, "iat", now+31, "nbf", now, "exp", now+300)},
		{"missing iat", jwtWith(c, "iat", nil)},
		{"exp - iat = 301", jwtWith(c, "exp", now+301)},
		{"exp - iat = 1 day", jwtWith(c, "exp", now+86400)},
		{"missing sub", jwtWith(c, "sub", nil)},
		{"empty sub", jwtWith(c, "sub", "")},
		{"missing sid", jwtWith(c, "sid", nil)},
		{"malformed sid", jwtWith(c, "sid", "../../etc")},
		{"missing jti", jwtWith(c, "jti", nil)},
		{"empty jti", jwtWith(c, "jti", "")},
		{"missing scope", jwtWith(c, "scope", nil)},
		{"scope as array", jwtWith(c, "scope", []string{"admin"})},
	}
	for _, tc := range refuse {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := f.tokens.Verify(craftJWT(t, h, tc.claims, f.ours()))
			require.ErrorIs(t, err, ErrTokenInvalid)
			require.Nil(t, got)
		})
	}
}

// TestVerifyExpiryOnClock moves the clock past a minted token's life.
func TestVerifyExpiryOnClock(t *testing.T) {
	t.Parallel()
	f := newJWTFixture(t)
	tok, _, err := f.tokens.Mint(f.sess)
	require.NoError(t, err)
	f.clock.Advance(5*time.Minute + 29*time.Second)
	_, err = f.tokens.Verify(tok)
	require.NoError(t, err, "within the 30 s skew")
	f.clock.Advance(2 * time.Second)
	_, err = f.tokens.Verify(tok)
	require.ErrorIs(t, err, ErrTokenInvalid)
}

// TestVerifyShorterTTL: with a configured TTL under 300 s, exp - iat is
// capped by it.
func TestVerifyShorterTTL(t *testing.T) {
	t.Parallel()
	f := newJWTFixture(t)
	short, err := NewTokens(TokenConfig{Issuer: testIssuer, TTL: time.Minute, Now: f.clock.Now}, f.keys)
	require.NoError(t, err)
	tok, ttl, err := short.Mint(f.sess)
	require.NoError(t, err)
	require.Equal(t, time.Minute, ttl)
	_, err = short.Verify(tok)
	require.NoError(t, err)
	// A 5-minute token of the default config is too long for this one.
	long, _, err := f.tokens.Mint(f.sess)
	require.NoError(t, err)
	_, err = short.Verify(long)
	require.ErrorIs(t, err, ErrTokenInvalid)
}

// TestKeyRotation is SECURITY.md item 26: after a new key is put first, a
// token signed by the previous key verifies until that key is retired,
// and the JWKS lists both.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	clock := newTokensClock()
	oldKey, newKey := generatedKey(t), generatedKey(t)
	before, err := ParseKeySet(keySetJSON(t, oldKey))
	require.NoError(t, err)
	during, err := ParseKeySet(keySetJSON(t, newKey, jwkWithoutD(oldKey)))
	require.NoError(t, err)
	after, err := ParseKeySet(keySetJSON(t, newKey))
	require.NoError(t, err)
	tokens := func(ks *KeySet) *Tokens {
		tk, err := NewTokens(TokenConfig{Issuer: testIssuer, Now: clock.Now}, ks)
		require.NoError(t, err)
		return tk
	}
	sess := newJWTFixture(t).sess

	oldTok, _, err := tokens(before).Mint(sess)
	require.NoError(t, err)
	newTok, _, err := tokens(during).Mint(sess)
	require.NoError(t, err)
	hdr := func(tok string) map[string]any {
		raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
		require.NoError(t, err)
		var h map[string]any
		require.NoError(t, json.Unmarshal(raw, &h))
		return h
	}
	require.Equal(t, oldKey["kid"], hdr(oldTok)["kid"])
	require.Equal(t, newKey["kid"], hdr(newTok)["kid"], "the first key of the rotated set signs")

	clock.Advance(4 * time.Minute)
	_, err = tokens(during).Verify(oldTok)
	require.NoError(t, err, "a token of the previous key verifies during rotation")
	_, err = tokens(during).Verify(newTok)
	require.NoError(t, err)
	_, err = tokens(before).Verify(newTok)
	require.ErrorIs(t, err, ErrTokenInvalid, "a node still on the old set refuses the new kid")

	var jwks struct{ Keys []map[string]any }
	require.NoError(t, json.Unmarshal(during.PublicJWKS(), &jwks))
	require.Len(t, jwks.Keys, 2)
	require.Equal(t, newKey["kid"], jwks.Keys[0]["kid"])
	require.Equal(t, oldKey["kid"], jwks.Keys[1]["kid"])

	_, err = tokens(after).Verify(oldTok)
	require.ErrorIs(t, err, ErrTokenInvalid, "a retired key verifies nothing")
	_, err = tokens(after).Verify(newTok)
	require.NoError(t, err)
}

// FuzzJWTVerify: Verify never panics, and whatever it accepts carries a
// valid Ed25519 signature, checked independently of the JWT library, by a
// key of the set named in the header, over exactly the presented bytes.
//
// The set also holds the RFC 8037 key as a verify-only key, and the clock
// is the fixtures', so that the committed corpus under
// testdata/fuzz/FuzzJWTVerify holds tokens that really verify.
func FuzzJWTVerify(f *testing.F) {
	fx := newJWTFixture(f)
	keys, err := ParseKeySet(keySetJSON(f, generatedKey(f),
		map[string]any{"kty": "OKP", "crv": "Ed25519", "x": rfc8037X, "kid": rfc8037Thumbprint}))
	require.NoError(f, err)
	fx.keys = keys
	fx.tokens, err = NewTokens(TokenConfig{Issuer: testIssuer, Now: fx.clock.Now}, keys)
	require.NoError(f, err)
	tok, _, err := fx.tokens.Mint(fx.sess)
	require.NoError(f, err)
	d, err := base64.RawURLEncoding.DecodeString(rfc8037D)
	require.NoError(f, err)
	byOld := craftJWT(f, jwtWith(fx.header(), "kid", rfc8037Thumbprint), fx.claims(), edSigner(ed25519.NewKeyFromSeed(d)))
	_, err = fx.tokens.Verify(byOld)
	require.NoError(f, err, "a token of the verify-only key verifies")
	f.Add(byOld)
	h, c := fx.header(), fx.claims()
	ourPub, _ := fx.keys.publicKey(fx.keys.ActiveKID())
	f.Add(tok)
	f.Add(craftJWT(f, h, c, fx.ours()))
	f.Add(craftJWT(f, jwtWith(h, "alg", "none"), c, nil))
	f.Add(craftJWT(f, jwtWith(h, "alg", "HS256"), c, hsSigner(ourPub)))
	f.Add(craftJWT(f, jwtWith(h, "jwk", map[string]any{"kty": "OKP"}), c, fx.ours()))
	f.Add(craftJWT(f, jwtWith(h, "kid", "x"), c, fx.ours()))
	f.Add("e30.e30.")
	f.Add("..")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := fx.tokens.Verify(raw)
		if err != nil {
			require.ErrorIs(t, err, ErrTokenInvalid)
			require.Nil(t, got)
			return
		}
		parts := strings.Split(raw, ".")
		require.Len(t, parts, 3)
		hb, err := base64.RawURLEncoding.DecodeString(parts[0])
		require.NoError(t, err)
		var hdr map[string]any
		require.NoError(t, json.Unmarshal(hb, &hdr))
		require.Equal(t, "EdDSA", hdr["alg"])
		kid, _ := hdr["kid"].(string)
		pub, ok := fx.keys.publicKey(kid)
		require.True(t, ok)
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		require.NoError(t, err)
		require.True(t, ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig),
			"accepted a token whose signature does not verify")
		require.NotEmpty(t, got.UserID)
		require.True(t, sessions.ValidID(got.SessionID))
	})
}

func BenchmarkMint(b *testing.B) {
	f := newJWTFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := f.tokens.Mint(f.sess); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	f := newJWTFixture(b)
	tok, _, err := f.tokens.Mint(f.sess)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.tokens.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
