package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrKeySet means a JWK set could not be used: malformed JSON, a key that
// is not Ed25519, a bad length, a duplicate kid, or a first key without its
// private part. The wrapped message names the key and the problem.
var ErrKeySet = errors.New("auth: bad key set")

const (
	// maxKeySetBytes bounds what ParseKeySet reads: a set of a few keys is
	// well under 4 KiB, so anything near this is not a key file.
	maxKeySetBytes = 64 << 10
	// maxKeys bounds the keys of one set: an active key plus a handful of
	// verify-only predecessors is all a rotation ever needs.
	maxKeys = 16
	// maxKIDLen bounds a kid: thumbprints are 43 chars, random kids fewer.
	maxKIDLen = 128
)

// KeySet holds the Ed25519 keys of the JWTs: the first key of the set signs
// (the active key) and every key, the active one included, verifies. A
// KeySet is immutable once built, so it is safe for concurrent use.
//
// Rotation: generate a new key (GenerateKeySet), put it first in the keys
// array of SESSIONHUB_KEYS_FILE and keep the old key after it, optionally
// without "d" (it only verifies). Remove the old key no sooner than one
// token TTL (5 minutes) after every node runs with the new file; until then
// tokens it signed keep verifying and /.well-known/jwks.json lists both.
type KeySet struct {
	activeKID string
	active    ed25519.PrivateKey
	verify    map[string]ed25519.PublicKey
	jwks      []byte // PublicJWKS, built once
}

// jwk is the JSON form of one OKP/Ed25519 key (RFC 8037).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	D   string `json:"d,omitempty"`
	Kid string `json:"kid"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
}

type jwkSet struct {
	Keys []jwk `json:"keys"`
}

// keyB64 is the encoding of JWK members: unpadded base64url, strict so
// that one key has one spelling.
func keyB64() *base64.Encoding { return base64.RawURLEncoding.Strict() }

// GenerateKeySet returns a JWK set holding one fresh Ed25519 key, private
// part "d" included, for SESSIONHUB_KEYS_FILE (`sessionhub keys generate`).
// The kid is the key's RFC 7638 thumbprint, so it is unique without any
// coordination and says nothing about when the key was made.
func GenerateKeySet() ([]byte, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("auth: generate ed25519 key: %w", err)
	}
	k := jwk{
		Kty: "OKP", Crv: "Ed25519",
		X:   keyB64().EncodeToString(pub),
		D:   keyB64().EncodeToString(priv.Seed()),
		Use: "sig", Alg: "EdDSA",
	}
	k.Kid = thumbprint(k.X)
	out, err := json.MarshalIndent(jwkSet{Keys: []jwk{k}}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("auth: encode key set: %w", err)
	}
	return append(out, '\n'), nil
}

// EphemeralKeySet returns a KeySet with one fresh key that lives only in
// memory: dev mode, where tokens die with the process.
func EphemeralKeySet() (*KeySet, error) {
	data, err := GenerateKeySet()
	if err != nil {
		return nil, err
	}
	return ParseKeySet(data)
}

// ParseKeySet reads a JWK set {"keys":[…]}. The first key signs and must
// carry "d"; the others only verify ("d" is allowed and ignored). Every key
// must be kty OKP, crv Ed25519, with a 32-byte x (and d), a unique non-empty
// kid, use "sig" and alg "EdDSA" when those are present, and a d that
// matches its x.
func ParseKeySet(data []byte) (*KeySet, error) {
	if len(data) > maxKeySetBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrKeySet, maxKeySetBytes)
	}
	var set jwkSet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%w: not a JWK set: %v", ErrKeySet, err)
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("%w: no keys", ErrKeySet)
	}
	if len(set.Keys) > maxKeys {
		return nil, fmt.Errorf("%w: %d keys, at most %d", ErrKeySet, len(set.Keys), maxKeys)
	}
	ks := &KeySet{verify: make(map[string]ed25519.PublicKey, len(set.Keys))}
	public := make([]jwk, 0, len(set.Keys))
	for i, k := range set.Keys {
		pub, priv, err := parseJWK(k, i == 0)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d (kid %.40q): %v", ErrKeySet, i, k.Kid, err)
		}
		if _, dup := ks.verify[k.Kid]; dup {
			return nil, fmt.Errorf("%w: key %d: duplicate kid %.40q", ErrKeySet, i, k.Kid)
		}
		ks.verify[k.Kid] = pub
		if i == 0 {
			ks.activeKID, ks.active = k.Kid, priv
		}
		public = append(public, jwk{Kty: "OKP", Crv: "Ed25519", X: k.X, Kid: k.Kid, Use: "sig", Alg: "EdDSA"})
	}
	jwks, err := json.Marshal(jwkSet{Keys: public})
	if err != nil {
		return nil, fmt.Errorf("auth: encode jwks: %w", err)
	}
	ks.jwks = jwks
	return ks, nil
}

// parseJWK checks one key; needPrivate is true for the signing key.
func parseJWK(k jwk, needPrivate bool) (ed25519.PublicKey, ed25519.PrivateKey, error) {
	switch {
	case k.Kty != "OKP":
		return nil, nil, fmt.Errorf("kty %.20q, want \"OKP\"", k.Kty)
	case k.Crv != "Ed25519":
		return nil, nil, fmt.Errorf("crv %.20q, want \"Ed25519\"", k.Crv)
	case k.Kid == "":
		return nil, nil, errors.New("missing kid")
	case len(k.Kid) > maxKIDLen:
		return nil, nil, fmt.Errorf("kid longer than %d bytes", maxKIDLen)
	case k.Use != "" && k.Use != "sig":
		return nil, nil, fmt.Errorf("use %.20q, want \"sig\"", k.Use)
	case k.Alg != "" && k.Alg != "EdDSA":
		return nil, nil, fmt.Errorf("alg %.20q, want \"EdDSA\"", k.Alg)
	}
	x, err := keyB64().DecodeString(k.X)
	if err != nil || len(x) != ed25519.PublicKeySize {
		return nil, nil, fmt.Errorf("x must be %d bytes of unpadded base64url", ed25519.PublicKeySize)
	}
	pub := ed25519.PublicKey(x)
	if k.D == "" {
		if needPrivate {
			return nil, nil, errors.New("the first key signs and needs its private part \"d\"")
		}
		return pub, nil, nil
	}
	d, err := keyB64().DecodeString(k.D)
	if err != nil || len(d) != ed25519.SeedSize {
		return nil, nil, fmt.Errorf("d must be %d bytes of unpadded base64url", ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(d)
	if subtle.ConstantTimeCompare(priv.Public().(ed25519.PublicKey), pub) != 1 {
		return nil, nil, errors.New("d does not match x")
	}
	return pub, priv, nil
}

// thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key
// (RFC 8037 §2): SHA-256 of the required members in lexicographic order.
func thumbprint(x string) string {
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + x + `"}`))
	return keyB64().EncodeToString(sum[:])
}

// PublicJWKS returns the public keys as served at /.well-known/jwks.json:
// {"keys":[{kty, crv, x, kid, use, alg}…]}, active key first. It never
// contains "d". The caller may keep or modify the returned slice.
func (k *KeySet) PublicJWKS() []byte { return bytes.Clone(k.jwks) }

// ActiveKID returns the kid of the signing key.
func (k *KeySet) ActiveKID() string { return k.activeKID }

// publicKey returns the verifying key named kid.
func (k *KeySet) publicKey(kid string) (ed25519.PublicKey, bool) {
	pub, ok := k.verify[kid]
	return pub, ok
}
