package sessions_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/sessions"
)

// benchAuthenticate measures validation of one live token: parse, hot read,
// constant-time compare, slide (on Redis: HGETALL + one pipelined
// EVALSHA/ZADD, two round trips).
func benchAuthenticate(b *testing.B, setup setupFunc) {
	bd := setup(b, sessions.Config{})
	_, tok := create(b, bd, bd.newUser(b))
	raw := tok.String()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := bd.store.Authenticate(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAuthenticateRedis(b *testing.B)  { benchAuthenticate(b, setupRedisPostgres) }
func BenchmarkAuthenticateMemory(b *testing.B) { benchAuthenticate(b, setupMemory) }

// BenchmarkAuthenticateRedisParallel is the same under concurrent requests,
// as a node serves them.
func BenchmarkAuthenticateRedisParallel(b *testing.B) {
	bd := setupRedisPostgres(b, sessions.Config{})
	_, tok := create(b, bd, bd.newUser(b))
	raw := tok.String()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := bd.store.Authenticate(context.Background(), raw); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCreate measures a login's session: Postgres INSERT, then the
// Redis hash, index and expiry set in one pipeline.
func BenchmarkCreate(b *testing.B) {
	bd := setupRedisPostgres(b, sessions.Config{})
	user := bd.newUser(b)
	ctx := context.Background()
	n := sessions.NewSession{UserID: user, Kind: sessions.KindBrowser, IP: "192.0.2.1", UserAgent: "bench"}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := bd.store.Create(ctx, n); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRevoke measures a logout: Postgres UPDATE … RETURNING, the
// Redis delete pipeline and the PUBLISH.
func BenchmarkRevoke(b *testing.B) {
	bd := setupRedisPostgres(b, sessions.Config{})
	user := bd.newUser(b)
	ctx := context.Background()
	var ids []string
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		if len(ids) == 0 {
			for range 256 {
				s, _, err := bd.store.Create(ctx, sessions.NewSession{UserID: user, Kind: sessions.KindBrowser})
				require.NoError(b, err)
				ids = append(ids, s.ID)
			}
		}
		id := ids[len(ids)-1]
		ids = ids[:len(ids)-1]
		b.StartTimer()
		if _, err := bd.store.Revoke(ctx, id, sessions.Revocation{Reason: sessions.ReasonLogout}); err != nil {
			b.Fatal(err)
		}
	}
}
