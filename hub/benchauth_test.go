package hub

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// benchAuth makes benchmarks pay what production pays per handshake: an
// Ed25519 JWT signature check with a JSON claims decode (auth.Tokens.Verify
// is ~100 µs of CPU here, ~70 of it the curve) and one pipelined Redis read
// of the session's expiry fields (sessions.Store.Status). Tokens come from
// benchToken, in the client processes too.
type benchAuth struct {
	pub    ed25519.PublicKey
	rdb    redis.UniversalClient
	prefix string
}

// benchSeed is a fixed test key: client processes mint, the server verifies.
var benchSeed = [ed25519.SeedSize]byte{1, 2, 3, 4, 5, 6, 7, 8, 9}

func newBenchAuth(rdb redis.UniversalClient, prefix string) *benchAuth {
	return &benchAuth{pub: ed25519.NewKeyFromSeed(benchSeed[:]).Public().(ed25519.PublicKey), rdb: rdb, prefix: prefix}
}

type benchClaims struct {
	Sub   string `json:"sub"`
	Sid   string `json:"sid"`
	Scope string `json:"scope"`
	Iss   string `json:"iss"`
	Aud   string `json:"aud"`
	Jti   string `json:"jti"`
	Iat   int64  `json:"iat"`
	Nbf   int64  `json:"nbf"`
	Exp   int64  `json:"exp"`
}

// benchToken mints user u<n>'s socket JWT for session s<n>.
func benchToken(n int) string { return benchTokenFor("u"+strconv.Itoa(n), "s"+strconv.Itoa(n)) }

// benchTokenFor mints a socket JWT for the user's session.
func benchTokenFor(user, session string) string {
	now := time.Now().Unix()
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"bench-key-1","typ":"JWT"}`))
	body, _ := json.Marshal(benchClaims{Sub: user, Sid: session,
		Scope: "sub:bench:* pub:bench:*", Iss: "http://localhost:8080", Aud: "sessionhub",
		Jti: "jti-" + session, Iat: now, Nbf: now, Exp: now + 300})
	signing := hdr + "." + base64.RawURLEncoding.EncodeToString(body)
	sig := ed25519.Sign(ed25519.NewKeyFromSeed(benchSeed[:]), []byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

var errBenchToken = errors.New("bench: bad token")

func (a *benchAuth) Verify(_ context.Context, tok string) (Identity, error) {
	h, rest, _ := strings.Cut(tok, ".")
	p, s, ok := strings.Cut(rest, ".")
	if !ok {
		return Identity{}, errBenchToken
	}
	var head struct{ Alg, Kid, Typ string }
	hb, err1 := base64.RawURLEncoding.DecodeString(h)
	pb, err2 := base64.RawURLEncoding.DecodeString(p)
	sig, err3 := base64.RawURLEncoding.DecodeString(s)
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &head) != nil || head.Alg != "EdDSA" {
		return Identity{}, errBenchToken
	}
	if !ed25519.Verify(a.pub, []byte(tok[:len(h)+1+len(p)]), sig) {
		return Identity{}, errBenchToken
	}
	var c benchClaims
	if json.Unmarshal(pb, &c) != nil || c.Exp < time.Now().Unix() {
		return Identity{}, errBenchToken
	}
	return Identity{UserID: c.Sub, SessionID: c.Sid, Scopes: strings.Fields(c.Scope)}, nil
}

// Status is sessions.Redis.Expiries' round trip: one HMGET per id in a
// pipeline. Sessions that have no hash count as alive (nothing is seeded).
func (a *benchAuth) Status(ctx context.Context, ids []string) ([]SessionState, error) {
	cmds := make([]*redis.SliceCmd, len(ids))
	if _, err := a.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, a.prefix+"s:"+id, "e", "a")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	out := make([]SessionState, len(ids))
	for i, c := range cmds {
		if v := c.Val(); len(v) == 2 && v[0] != nil {
			out[i] = SessionRevoked // a seeded hash marks a dead session
		}
	}
	return out, nil
}

func (a *benchAuth) FromCookie(http.ResponseWriter, *http.Request) (Identity, error) {
	return Identity{}, ErrInvalidToken
}
