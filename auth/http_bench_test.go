package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkHashPassword is the cost of one argon2id hash at the production
// parameters (m=19456 KiB, t=2, p=1): the CPU price of one login.
func BenchmarkHashPassword(b *testing.B) {
	h, err := newHasher(defaultArgon)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetSession is an authenticated GET /session through the router
// on real Redis and Postgres: cookie parse, Redis read, constant-time
// compare, sliding touch (Redis), user read (Postgres), cookie re-send.
func BenchmarkGetSession(b *testing.B) {
	bb := hSetup(b)
	u := bb.signup(b, hEmail("bench"))
	cookie := CookieName + "=" + u.token
	b.ReportAllocs()
	// Eight clients per core: the work is mostly waiting on Redis and
	// Postgres, so this measures throughput rather than one client's latency.
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest("GET", "/session", nil)
			r.Header.Set("Cookie", cookie)
			w := httptest.NewRecorder()
			bb.h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}

// BenchmarkSessionToken is POST /session/token (cookie + CSRF) through the
// router: authenticate, rate-limit step in Redis, mint an EdDSA JWT. The
// per-session limit is lifted so the benchmark measures the work.
func BenchmarkSessionToken(b *testing.B) {
	bb := hSetup(b, func(c *Config, _ *Deps) { c.TokensPerSession = 1 << 30 })
	u := bb.signup(b, hEmail("benchtok"))
	cookie := CookieName + "=" + u.token
	b.ReportAllocs()
	// Eight clients per core: the work is mostly waiting on Redis and
	// Postgres, so this measures throughput rather than one client's latency.
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest("POST", "/session/token", nil)
			r.Header.Set("Cookie", cookie)
			r.Header.Set("X-CSRF-Token", u.csrf)
			w := httptest.NewRecorder()
			bb.h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}
