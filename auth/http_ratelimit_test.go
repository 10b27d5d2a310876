package auth

import (
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/internal/testenv"
)

func badSignup(t testing.TB, b *hBundle, header ...string) *hResp {
	return b.do(t, "POST", "/auth/signup", map[string]any{"email": "not-an-email", "password": hPassword}, header...)
}

// TestIPRateLimit: 60 login+signup attempts per IP per minute, shared by
// login and signup, 429 + Retry-After past it (SECURITY.md 33).
func TestIPRateLimit(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	email := hEmail("iplimit")
	for i := 0; i < 59; i++ {
		require.Equal(t, http.StatusBadRequest, badSignup(t, b).status, "attempt %d", i+1)
	}
	r := b.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": hPassword})
	require.Equal(t, http.StatusUnauthorized, r.status, "the 60th attempt is still evaluated")
	r = b.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": hPassword})
	require.Equal(t, http.StatusTooManyRequests, r.status)
	require.Equal(t, "rate_limited", r.errCode(t))
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	require.NoError(t, err)
	require.True(t, ra >= 1 && ra <= 60, "Retry-After %d", ra)
	require.Equal(t, http.StatusTooManyRequests, badSignup(t, b).status)
	b.clock.Advance(time.Duration(ra) * time.Second)
	require.Equal(t, http.StatusBadRequest, badSignup(t, b).status, "budget refills")
	require.Equal(t, http.StatusTooManyRequests, badSignup(t, b).status, "one per second after the burst")
}

// TestTrustedProxies: X-Forwarded-For counts only from a trusted proxy, and
// then its right-most untrusted entry is the client; IPv6 is limited per /64.
func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	untrusted := hSetup(t, func(c *Config, _ *Deps) { c.LoginsPerIP = 3 })
	for i := 0; i < 3; i++ {
		badSignup(t, untrusted, "X-Forwarded-For", "198.51.100."+strconv.Itoa(i))
	}
	require.Equal(t, http.StatusTooManyRequests, badSignup(t, untrusted, "X-Forwarded-For", "198.51.100.99").status,
		"a client cannot dodge the limit with X-Forwarded-For")

	b := hSetup(t, func(c *Config, _ *Deps) {
		c.LoginsPerIP = 3
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
	})
	for i := 0; i < 3; i++ {
		require.Equal(t, http.StatusBadRequest, badSignup(t, b, "X-Forwarded-For", "203.0.113.7").status)
	}
	require.Equal(t, http.StatusTooManyRequests, badSignup(t, b, "X-Forwarded-For", "203.0.113.7").status)
	// A spoofed left-most entry does not help: the right-most untrusted
	// entry (what our proxy saw) is the client.
	require.Equal(t, http.StatusTooManyRequests, badSignup(t, b, "X-Forwarded-For", "1.2.3.4, 203.0.113.7, 10.1.1.1").status)
	require.Equal(t, http.StatusBadRequest, badSignup(t, b, "X-Forwarded-For", "203.0.113.8").status)
	// IPv6: one budget per /64.
	for i := 0; i < 3; i++ {
		badSignup(t, b, "X-Forwarded-For", "2001:db8:1:2::"+strconv.Itoa(i+1))
	}
	require.Equal(t, http.StatusTooManyRequests, badSignup(t, b, "X-Forwarded-For", "2001:db8:1:2:ffff::1").status)
	require.Equal(t, http.StatusBadRequest, badSignup(t, b, "X-Forwarded-For", "2001:db8:1:3::1").status)

	// The BFF case: the relayed client's IP and user agent are recorded.
	email := hEmail("bff")
	r := b.do(t, "POST", "/auth/signup", map[string]any{"email": email, "password": hPassword},
		"X-Forwarded-For", "192.0.2.44", "User-Agent", "EndUser/1.0")
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	s := r.json(t)["session"].(map[string]any)
	require.Equal(t, "192.0.2.44", s["ip"])
	require.Equal(t, "EndUser/1.0", s["user_agent"])
}

// TestAccountBackoff: 5 free failures, then 1 s doubling; during a backoff
// even the right password gets 429 and refused attempts are not failures;
// unknown accounts behave the same (SECURITY.md 33).
func TestAccountBackoff(t *testing.T) {
	t.Parallel()
	b := hSetup(t)
	nodeB := hNode(t, b.rdb, b.prefix, b.pool, b.clock)
	email := hEmail("backoff")
	b.signup(t, email)
	login := func(b *hBundle, email, pw string) *hResp {
		return b.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": pw})
	}
	for _, who := range []string{email, hEmail("ghost")} {
		for i := 0; i < 5; i++ {
			require.Equal(t, http.StatusUnauthorized, login(b, who, "wrong password").status, "failure %d", i+1)
		}
		r := login(b, who, hPassword)
		require.Equal(t, http.StatusTooManyRequests, r.status)
		require.Equal(t, "1", r.header.Get("Retry-After"))
		require.Equal(t, `{"error":"rate_limited","message":"too many attempts; retry later"}`+"\n", string(r.body))
		// Shared by every node through Redis.
		require.Equal(t, http.StatusTooManyRequests, login(nodeB, who, hPassword).status)
		for i := 0; i < 5; i++ { // refused attempts do not count
			require.Equal(t, http.StatusTooManyRequests, login(b, who, "wrong password").status)
		}
		b.clock.Advance(time.Second)
		require.Equal(t, http.StatusUnauthorized, login(b, who, "wrong password").status)
		r = login(b, who, hPassword)
		require.Equal(t, http.StatusTooManyRequests, r.status)
		require.Equal(t, "2", r.header.Get("Retry-After"), "doubled")
		b.clock.Advance(2 * time.Second)
	}
	require.Equal(t, http.StatusOK, login(b, email, hPassword).status)
	// Success forgets the failures.
	for i := 0; i < 5; i++ {
		require.Equal(t, http.StatusUnauthorized, login(b, email, "wrong password").status)
	}
	// The backoff is capped at 15 minutes.
	last := 0
	for i := 0; i < 40 && last < 900; i++ {
		r := login(b, email, "wrong password")
		if r.status == http.StatusTooManyRequests {
			ra, _ := strconv.Atoi(r.header.Get("Retry-After"))
			require.LessOrEqual(t, ra, 900)
			require.GreaterOrEqual(t, ra, last, "never shrinks while failing")
			last = ra
			b.clock.Advance(time.Duration(ra) * time.Second)
		}
	}
	require.Equal(t, 900, last, "capped at 15 minutes")
	r := login(b, email, "wrong password")
	require.Equal(t, http.StatusUnauthorized, r.status)
	r = login(b, email, hPassword)
	require.Equal(t, "900", r.header.Get("Retry-After"))
	require.Positive(t, b.counter(t, "sessionhub_auth_logins_total", map[string]string{"method": "password", "result": "throttled"}))
}

// TestRateLimitRedisDown: with Redis gone, limits fall back to this node's
// memory and logins keep working.
func TestRateLimitRedisDown(t *testing.T) {
	t.Parallel()
	rs := testenv.StartRedis(t)
	limRedis := redis.NewClient(&redis.Options{Addr: rs.Addr, MaxRetries: -1})
	t.Cleanup(func() { limRedis.Close() })
	b := hSetup(t, func(_ *Config, d *Deps) { d.Redis = limRedis })
	email := hEmail("down")
	b.signup(t, email)
	rs.Kill()
	require.Equal(t, http.StatusOK, b.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": hPassword}).status)
	for i := 0; i < 5; i++ {
		require.Equal(t, http.StatusUnauthorized, b.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": "wrong one"}).status)
	}
	require.Equal(t, http.StatusTooManyRequests, b.do(t, "POST", "/auth/login", map[string]any{"email": email, "password": hPassword}).status)
}
