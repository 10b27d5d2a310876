package auth

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// RFC 8037 appendix A: an Ed25519 key and its RFC 7638 thumbprint.
const (
	rfc8037D          = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
	rfc8037X          = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
	rfc8037Thumbprint = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
)

// keySetJSON builds a JWK set from raw key maps, for hand-made sets.
func keySetJSON(t testing.TB, keys ...map[string]any) []byte {
	t.Helper()
	out, err := json.Marshal(map[string]any{"keys": keys})
	require.NoError(t, err)
	return out
}

// generatedKey returns the single key of a fresh GenerateKeySet as a map.
func generatedKey(t testing.TB) map[string]any {
	t.Helper()
	data, err := GenerateKeySet()
	require.NoError(t, err)
	var set struct{ Keys []map[string]any }
	require.NoError(t, json.Unmarshal(data, &set))
	require.Len(t, set.Keys, 1)
	return set.Keys[0]
}

func jwkWithoutD(k map[string]any) map[string]any {
	c := make(map[string]any, len(k))
	for n, v := range k {
		if n != "d" {
			c[n] = v
		}
	}
	return c
}

func jwkWith(k map[string]any, name string, v any) map[string]any {
	c := jwkWithoutD(k)
	if d, ok := k["d"]; ok {
		c["d"] = d
	}
	if v == nil {
		delete(c, name)
	} else {
		c[name] = v
	}
	return c
}

func TestGenerateKeySet(t *testing.T) {
	t.Parallel()
	k := generatedKey(t)
	require.Equal(t, "OKP", k["kty"])
	require.Equal(t, "Ed25519", k["crv"])
	require.Equal(t, "sig", k["use"])
	require.Equal(t, "EdDSA", k["alg"])
	x, err := base64.RawURLEncoding.DecodeString(k["x"].(string))
	require.NoError(t, err)
	require.Len(t, x, ed25519.PublicKeySize)
	d, err := base64.RawURLEncoding.DecodeString(k["d"].(string))
	require.NoError(t, err)
	require.Len(t, d, ed25519.SeedSize)
	require.Equal(t, thumbprint(k["x"].(string)), k["kid"], "kid is the RFC 7638 thumbprint")

	ks, err := ParseKeySet(keySetJSON(t, k))
	require.NoError(t, err)
	require.Equal(t, k["kid"], ks.ActiveKID())

	other := generatedKey(t)
	require.NotEqual(t, k["x"], other["x"], "every call makes a fresh key")
}

func TestThumbprintRFC8037(t *testing.T) {
	t.Parallel()
	require.Equal(t, rfc8037Thumbprint, thumbprint(rfc8037X))
	ks, err := ParseKeySet(keySetJSON(t, map[string]any{
		"kty": "OKP", "crv": "Ed25519", "x": rfc8037X, "d": rfc8037D, "kid": rfc8037Thumbprint,
	}))
	require.NoError(t, err, "the RFC 8037 key parses; d matches x")
	require.Equal(t, rfc8037Thumbprint, ks.ActiveKID())
}

func TestParseKeySetRejects(t *testing.T) {
	t.Parallel()
	good := generatedKey(t)
	second := generatedKey(t)
	shortB64 := base64.RawURLEncoding.EncodeToString(make([]byte, 31))
	longB64 := base64.RawURLEncoding.EncodeToString(make([]byte, 33))
	otherD := generatedKey(t)["d"]

	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"not json", []byte("nope"), "not a JWK set"},
		{"trailing data", append(keySetJSON(t, good), []byte(` {}`)...), "not a JWK set"},
		{"keys not an array", []byte(`{"keys":{}}`), "not a JWK set"},
		{"no keys", []byte(`{"keys":[]}`), "no keys"},
		{"missing keys", []byte(`{}`), "no keys"},
		{"kty RSA", keySetJSON(t, jwkWith(good, "kty", "RSA")), `kty "RSA"`},
		{"kty EC", keySetJSON(t, jwkWith(good, "kty", "EC")), `kty "EC"`},
		{"crv X25519", keySetJSON(t, jwkWith(good, "crv", "X25519")), `crv "X25519"`},
		{"crv Ed448", keySetJSON(t, jwkWith(good, "crv", "Ed448")), `crv "Ed448"`},
		{"crv P-256", keySetJSON(t, jwkWith(good, "crv", "P-256")), `crv "P-256"`},
		{"x too short", keySetJSON(t, jwkWith(good, "x", shortB64)), "x must be 32 bytes"},
		{"x too long", keySetJSON(t, jwkWith(good, "x", longB64)), "x must be 32 bytes"},
		{"x padded", keySetJSON(t, jwkWith(good, "x", good["x"].(string)+"=")), "x must be 32 bytes"},
		{"x std base64", keySetJSON(t, jwkWith(good, "x", "+/"+good["x"].(string)[2:])), "x must be 32 bytes"},
		{"missing x", keySetJSON(t, jwkWith(good, "x", nil)), "x must be 32 bytes"},
		{"d too short", keySetJSON(t, jwkWith(good, "d", shortB64)), "d must be 32 bytes"},
		{"d too long", keySetJSON(t, jwkWith(good, "d", longB64)), "d must be 32 bytes"},
		{"d of another key", keySetJSON(t, jwkWith(good, "d", otherD)), "d does not match x"},
		{"missing kid", keySetJSON(t, jwkWith(good, "kid", nil)), "missing kid"},
		{"long kid", keySetJSON(t, jwkWith(good, "kid", strings.Repeat("k", 129))), "kid longer"},
		{"use enc", keySetJSON(t, jwkWith(good, "use", "enc")), `use "enc"`},
		{"alg ES256", keySetJSON(t, jwkWith(good, "alg", "ES256")), `alg "ES256"`},
		{"alg none", keySetJSON(t, jwkWith(good, "alg", "none")), `alg "none"`},
		{"first key without d", keySetJSON(t, jwkWithoutD(good), second), `needs its private part "d"`},
		{"duplicate kid", keySetJSON(t, good, jwkWith(second, "kid", good["kid"])), "duplicate kid"},
		{"duplicate key", keySetJSON(t, good, jwkWithoutD(good)), "duplicate kid"},
		{"bad second key", keySetJSON(t, good, jwkWith(second, "crv", "P-256")), "key 1"},
		{"too many keys", keySetJSON(t, func() []map[string]any {
			ks := []map[string]any{good}
			for i := range 16 {
				ks = append(ks, jwkWith(jwkWithoutD(second), "kid", strings.Repeat("k", i+1)))
			}
			return ks
		}()...), "at most 16"},
		{"too large", append([]byte(`{"keys":[`), make([]byte, 70<<10)...), "larger than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ks, err := ParseKeySet(tc.data)
			require.ErrorIs(t, err, ErrKeySet)
			require.Nil(t, ks)
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), good["d"], "errors never print a private key")
		})
	}
}

func TestParseKeySetRotation(t *testing.T) {
	t.Parallel()
	active, previous, older := generatedKey(t), generatedKey(t), generatedKey(t)
	// The previous key keeps its d (harmless, ignored); the older one is
	// public only.
	ks, err := ParseKeySet(keySetJSON(t, active, previous, jwkWithoutD(older)))
	require.NoError(t, err)
	require.Equal(t, active["kid"], ks.ActiveKID(), "the first key signs")
	for _, k := range []map[string]any{active, previous, older} {
		_, ok := ks.publicKey(k["kid"].(string))
		require.True(t, ok, "every key verifies")
	}

	var jwks struct{ Keys []map[string]any }
	require.NoError(t, json.Unmarshal(ks.PublicJWKS(), &jwks))
	require.Len(t, jwks.Keys, 3)
	for i, want := range []map[string]any{active, previous, older} {
		require.Equal(t, jwkWithoutD(want), jwks.Keys[i], "key %d: public members only, in file order", i)
	}
	require.NotContains(t, string(ks.PublicJWKS()), `"d"`)
	require.NotContains(t, string(ks.PublicJWKS()), active["d"])
}

func TestPublicJWKSIsACopy(t *testing.T) {
	t.Parallel()
	ks, err := EphemeralKeySet()
	require.NoError(t, err)
	a := ks.PublicJWKS()
	a[0] = 'X'
	require.Equal(t, byte('{'), ks.PublicJWKS()[0])
}

func TestEphemeralKeySet(t *testing.T) {
	t.Parallel()
	a, err := EphemeralKeySet()
	require.NoError(t, err)
	b, err := EphemeralKeySet()
	require.NoError(t, err)
	require.NotEqual(t, a.ActiveKID(), b.ActiveKID())
	require.NotContains(t, string(a.PublicJWKS()), `"d"`)
}

// FuzzKeysParse: ParseKeySet never panics, and a set it accepts has a
// signing key and a public JWKS without private parts.
func FuzzKeysParse(f *testing.F) {
	good := generatedKey(f)
	f.Add(keySetJSON(f, good))
	f.Add(keySetJSON(f, good, jwkWithoutD(generatedKey(f))))
	f.Add(keySetJSON(f, map[string]any{"kty": "OKP", "crv": "Ed25519", "x": rfc8037X, "d": rfc8037D, "kid": "a"}))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"","kid":"a"}]}`))
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := ParseKeySet(data)
		if err != nil {
			require.ErrorIs(t, err, ErrKeySet)
			return
		}
		require.NotEmpty(t, ks.ActiveKID())
		require.NotNil(t, ks.active)
		pub, ok := ks.publicKey(ks.ActiveKID())
		require.True(t, ok)
		require.Equal(t, ks.active.Public(), pub)
		var jwks struct{ Keys []map[string]any }
		require.NoError(t, json.Unmarshal(ks.PublicJWKS(), &jwks))
		require.NotEmpty(t, jwks.Keys)
		for _, k := range jwks.Keys {
			require.NotContains(t, k, "d")
		}
	})
}
