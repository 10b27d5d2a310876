package main

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// envOf makes a getenv from a map.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func parse(t *testing.T, env map[string]string, flags ...string) (*Config, error) {
	t.Helper()
	return parseServeConfig(flags, envOf(env), io.Discard)
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := parse(t, nil)
	require.NoError(t, err)
	require.Equal(t, ":8080", c.Addr)
	require.Equal(t, "127.0.0.1:9090", c.MetricsAddr)
	require.Equal(t, "http://localhost:8080", c.PublicURL.String())
	require.True(t, c.Memory())
	require.Equal(t, "sh:", c.RedisPrefix)
	require.Equal(t, 12*time.Hour, c.SessionTTL)
	require.Equal(t, 168*time.Hour, c.SessionMaxAge)
	require.Equal(t, http.SameSiteNoneMode, c.CookieSameSite)
	require.False(t, c.CookiePartitioned)
	require.Equal(t, 30*time.Second, c.RefreshGrace)
	require.Empty(t, c.TrustedProxies)
	require.Equal(t, 5*time.Second, c.Drain)
	require.Equal(t, 5*time.Minute, c.TokenTTL)
	require.Empty(t, c.KeysFile)
	require.Equal(t, []string{"http://localhost:8080"}, c.AllowedOrigins)
	require.Equal(t, 25*time.Second, c.Heartbeat)
	require.Equal(t, 30*time.Second, c.SweepInterval)
	require.Equal(t, 1<<20, c.SendQueue)
	require.Equal(t, 32, c.MaxSocketsPerUser)
	require.Empty(t, c.DefaultScopes)
	require.False(t, c.GoogleEnabled())
	require.Equal(t, "https://accounts.google.com", c.OIDCIssuer)
	require.Equal(t, "text", c.LogFormat, "memory mode logs text")
	require.Equal(t, slog.LevelInfo, c.LogLevel)
	require.False(t, c.Migrate)
}

// validCases sets each variable to a good value and checks the parsed
// field. Every variable of the table appears at least once (checked by
// TestConfigTableCovered).
var validCases = []struct {
	env   string
	value string
	check func(t *testing.T, c *Config)
}{
	{"SESSIONHUB_ADDR", "127.0.0.1:0", func(t *testing.T, c *Config) { require.Equal(t, "127.0.0.1:0", c.Addr) }},
	{"SESSIONHUB_ADDR", "[::1]:8443", func(t *testing.T, c *Config) { require.Equal(t, "[::1]:8443", c.Addr) }},
	{"PORT", "3000", func(t *testing.T, c *Config) { require.Equal(t, ":3000", c.Addr) }},
	{"SESSIONHUB_METRICS_ADDR", ":9100", func(t *testing.T, c *Config) { require.Equal(t, ":9100", c.MetricsAddr) }},
	{"SESSIONHUB_PUBLIC_URL", "https://Auth.Example.com/", func(t *testing.T, c *Config) {
		require.Equal(t, "https://auth.example.com", c.PublicURL.String())
		require.Equal(t, []string{"https://auth.example.com"}, c.AllowedOrigins)
	}},
	{"SESSIONHUB_PUBLIC_URL", "http://localhost:8080", func(t *testing.T, c *Config) { require.Equal(t, "localhost:8080", c.PublicURL.Host) }},
	{"SESSIONHUB_REDIS_PREFIX", "tenant1:", func(t *testing.T, c *Config) { require.Equal(t, "tenant1:", c.RedisPrefix) }},
	{"SESSIONHUB_SESSION_TTL", "90m", func(t *testing.T, c *Config) { require.Equal(t, 90*time.Minute, c.SessionTTL) }},
	{"SESSIONHUB_SESSION_MAX_AGE", "720h", func(t *testing.T, c *Config) { require.Equal(t, 720*time.Hour, c.SessionMaxAge) }},
	{"SESSIONHUB_SESSION_MAX_AGE", "1h", func(t *testing.T, c *Config) {
		require.Equal(t, time.Hour, c.SessionMaxAge)
		require.Equal(t, time.Hour, c.SessionTTL, "the idle timeout never exceeds the absolute lifetime")
	}},
	{"SESSIONHUB_COOKIE_SAMESITE", "lax", func(t *testing.T, c *Config) { require.Equal(t, http.SameSiteLaxMode, c.CookieSameSite) }},
	{"SESSIONHUB_COOKIE_SAMESITE", "Strict", func(t *testing.T, c *Config) { require.Equal(t, http.SameSiteStrictMode, c.CookieSameSite) }},
	{"SESSIONHUB_COOKIE_PARTITIONED", "true", func(t *testing.T, c *Config) { require.True(t, c.CookiePartitioned) }},
	{"SESSIONHUB_REFRESH_GRACE", "0s", func(t *testing.T, c *Config) { require.Zero(t, c.RefreshGrace) }},
	{"SESSIONHUB_REFRESH_GRACE", "1m", func(t *testing.T, c *Config) { require.Equal(t, time.Minute, c.RefreshGrace) }},
	{"SESSIONHUB_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7, fd00::/8", func(t *testing.T, c *Config) {
		require.Equal(t, []netip.Prefix{
			netip.MustParsePrefix("10.0.0.0/8"),
			netip.MustParsePrefix("192.168.1.7/32"),
			netip.MustParsePrefix("fd00::/8"),
		}, c.TrustedProxies)
	}},
	{"SESSIONHUB_TRUSTED_PROXIES", "10.1.2.3/8", func(t *testing.T, c *Config) {
		require.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, c.TrustedProxies)
	}},
	{"SESSIONHUB_DRAIN", "0s", func(t *testing.T, c *Config) { require.Zero(t, c.Drain) }},
	{"SESSIONHUB_DRAIN", "8s", func(t *testing.T, c *Config) { require.Equal(t, 8*time.Second, c.Drain) }},
	{"SESSIONHUB_TOKEN_TTL", "2m", func(t *testing.T, c *Config) { require.Equal(t, 2*time.Minute, c.TokenTTL) }},
	// Any readable file passes here; serve parses it as a JWK set.
	{"SESSIONHUB_KEYS_FILE", "config_test.go", func(t *testing.T, c *Config) { require.Equal(t, "config_test.go", c.KeysFile) }},
	{"SESSIONHUB_ALLOWED_ORIGINS", "https://app.example.com, http://localhost:5173", func(t *testing.T, c *Config) {
		require.Equal(t, []string{"http://localhost:8080", "https://app.example.com", "http://localhost:5173"}, c.AllowedOrigins,
			"the public URL's origin is always allowed")
	}},
	{"SESSIONHUB_ALLOWED_ORIGINS", "https://App.example.com:443,http://x.example:80,http://y.example:8443", func(t *testing.T, c *Config) {
		require.Equal(t, []string{"http://localhost:8080", "https://app.example.com", "http://x.example", "http://y.example:8443"}, c.AllowedOrigins,
			"as browsers send Origin: lower case, no default port")
	}},
	{"SESSIONHUB_HEARTBEAT", "10s", func(t *testing.T, c *Config) { require.Equal(t, 10*time.Second, c.Heartbeat) }},
	{"SESSIONHUB_SWEEP_INTERVAL", "5s", func(t *testing.T, c *Config) { require.Equal(t, 5*time.Second, c.SweepInterval) }},
	{"SESSIONHUB_SEND_QUEUE", "64KiB", func(t *testing.T, c *Config) { require.Equal(t, 65536, c.SendQueue) }},
	{"SESSIONHUB_SEND_QUEUE", "2MiB", func(t *testing.T, c *Config) { require.Equal(t, 2<<20, c.SendQueue) }},
	{"SESSIONHUB_SEND_QUEUE", "100000", func(t *testing.T, c *Config) { require.Equal(t, 100000, c.SendQueue) }},
	{"SESSIONHUB_MAX_SOCKETS_PER_USER", "5", func(t *testing.T, c *Config) { require.Equal(t, 5, c.MaxSocketsPerUser) }},
	{"SESSIONHUB_DEFAULT_SCOPES", "sub:room:* pub:room:*", func(t *testing.T, c *Config) {
		require.Equal(t, []string{"sub:room:*", "pub:room:*"}, c.DefaultScopes)
	}},
	{"SESSIONHUB_OIDC_ISSUER", "http://127.0.0.1:5556/dex", func(t *testing.T, c *Config) { require.Equal(t, "http://127.0.0.1:5556/dex", c.OIDCIssuer) }},
	{"SESSIONHUB_LOG_FORMAT", "json", func(t *testing.T, c *Config) { require.Equal(t, "json", c.LogFormat) }},
	{"SESSIONHUB_LOG_LEVEL", "debug", func(t *testing.T, c *Config) { require.Equal(t, slog.LevelDebug, c.LogLevel) }},
}

// pairs are variables only valid together; validCases set one of them,
// so the test adds its partner.
var pairs = map[string]map[string]string{
	"REDIS_URL":            {"DATABASE_URL": "postgres://root@127.0.0.1:5432/test"},
	"DATABASE_URL":         {"REDIS_URL": "redis://127.0.0.1:6379/0"},
	"GOOGLE_CLIENT_ID":     {"GOOGLE_CLIENT_SECRET": "s3cret"},
	"GOOGLE_CLIENT_SECRET": {"GOOGLE_CLIENT_ID": "id.apps.googleusercontent.com"},
}

var pairedValid = []struct {
	env   string
	value string
	check func(t *testing.T, c *Config)
}{
	{"REDIS_URL", "redis://:pw@127.0.0.1:6379/2", func(t *testing.T, c *Config) {
		require.False(t, c.Memory())
		require.Equal(t, "json", c.LogFormat, "production logs JSON")
	}},
	{"REDIS_URL", "redis+cluster://a:7000,b:7001", func(t *testing.T, c *Config) { require.Equal(t, "redis+cluster://a:7000,b:7001", c.RedisURL) }},
	{"REDIS_URL", "redis://a:7000,redis://b:7001", func(t *testing.T, c *Config) { require.False(t, c.Memory()) }},
	{"DATABASE_URL", "postgresql://u:p@db:5432/sessionhub?sslmode=require", func(t *testing.T, c *Config) { require.False(t, c.Memory()) }},
	{"GOOGLE_CLIENT_ID", "123.apps.googleusercontent.com", func(t *testing.T, c *Config) { require.True(t, c.GoogleEnabled()) }},
	{"GOOGLE_CLIENT_SECRET", "GOCSPX-abc", func(t *testing.T, c *Config) { require.Equal(t, "GOCSPX-abc", c.GoogleClientSecret) }},
}

func TestConfigValid(t *testing.T) {
	t.Parallel()
	cases := append(validCases, pairedValid...)
	for _, tc := range cases {
		t.Run(tc.env+"="+tc.value, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{tc.env: tc.value}
			for k, v := range pairs[tc.env] {
				env[k] = v
			}
			c, err := parse(t, env)
			require.NoError(t, err)
			tc.check(t, c)

			// The same value given as the flag wins over a variable.
			flagName := flagOf(t, tc.env)
			env[tc.env] = "garbage that would fail"
			c, err = parse(t, env, "--"+flagName+"="+tc.value)
			require.NoError(t, err)
			tc.check(t, c)
		})
	}
}

// invalidCases are bad values; the error must name the variable and say
// what is wrong (want).
var invalidCases = []struct {
	env, value, want string
}{
	{"SESSIONHUB_ADDR", "8080", "listen address"},
	{"SESSIONHUB_ADDR", ":99999", "port"},
	{"PORT", "http", "port number"},
	{"PORT", "0", "port number"},
	{"SESSIONHUB_METRICS_ADDR", "localhost", "listen address"},
	{"SESSIONHUB_PUBLIC_URL", "auth.example.com", "absolute http or https URL"},
	{"SESSIONHUB_PUBLIC_URL", "https://auth.example.com/app", "no path"},
	{"SESSIONHUB_PUBLIC_URL", "ftp://auth.example.com", "http or https"},
	{"REDIS_URL", "http://redis:6379", "redis://"},
	{"REDIS_URL", "redis://a:1,mysql://b:2", "item 2"},
	{"DATABASE_URL", "mysql://db/x", "postgres://"},
	{"SESSIONHUB_REDIS_PREFIX", "has space", "spaces"},
	{"SESSIONHUB_SESSION_TTL", "12", "not a duration"},
	{"SESSIONHUB_SESSION_TTL", "-1h", "at least 1m0s"},
	{"SESSIONHUB_SESSION_MAX_AGE", "seven days", "not a duration"},
	{"SESSIONHUB_SESSION_MAX_AGE", "30s", "at least 1m0s"},
	{"SESSIONHUB_COOKIE_SAMESITE", "always", "none, lax or strict"},
	{"SESSIONHUB_COOKIE_PARTITIONED", "yes please", "true or false"},
	{"SESSIONHUB_REFRESH_GRACE", "-1s", "negative"},
	{"SESSIONHUB_REFRESH_GRACE", "1h", "at most 5m0s"},
	{"SESSIONHUB_TRUSTED_PROXIES", "10.0.0.0/33", "not a CIDR"},
	{"SESSIONHUB_TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal", "not a CIDR"},
	{"SESSIONHUB_DRAIN", "30s", "at most 8s"},
	{"SESSIONHUB_DRAIN", "soon", "not a duration"},
	{"SESSIONHUB_TOKEN_TTL", "1h", "at most 5m0s"},
	{"SESSIONHUB_TOKEN_TTL", "1s", "at least 10s"},
	{"SESSIONHUB_ALLOWED_ORIGINS", "https://app.example.com/", "not an origin"},
	{"SESSIONHUB_ALLOWED_ORIGINS", "*", "not an origin"},
	{"SESSIONHUB_ALLOWED_ORIGINS", "https://*.example.com", "not an origin"},
	{"SESSIONHUB_ALLOWED_ORIGINS", "app.example.com", "not an origin"},
	{"SESSIONHUB_ALLOWED_ORIGINS", "https://app.example.com/path", "not an origin"},
	{"SESSIONHUB_HEARTBEAT", "100ms", "at least 1s"},
	{"SESSIONHUB_SWEEP_INTERVAL", "0s", "at least 1s"},
	{"SESSIONHUB_SEND_QUEUE", "1MB", "not a size"},
	{"SESSIONHUB_SEND_QUEUE", "1KiB", "at least 64KiB"},
	{"SESSIONHUB_SEND_QUEUE", "-5", "not a size"},
	{"SESSIONHUB_MAX_SOCKETS_PER_USER", "0", "at least 1"},
	{"SESSIONHUB_MAX_SOCKETS_PER_USER", "many", "whole number"},
	{"SESSIONHUB_DEFAULT_SCOPES", "sub:room:*:x*y", "last character"},
	{"SESSIONHUB_DEFAULT_SCOPES", "read", "not admin, sub:<pattern> or pub:<pattern>"},
	{"SESSIONHUB_DEFAULT_SCOPES", "admin", "administrator"},
	{"SESSIONHUB_KEYS_FILE", "/nonexistent/keys.json", "cannot read"},
	{"SESSIONHUB_KEYS_FILE", ".", "not a regular file"},
	{"GOOGLE_CLIENT_ID", "id with space", "spaces"},
	{"GOOGLE_CLIENT_SECRET", "only-secret", "Google login needs both"},
	{"SESSIONHUB_OIDC_ISSUER", "http://accounts.example.com", "https"},
	{"SESSIONHUB_OIDC_ISSUER", "accounts.google.com", "absolute URL"},
	{"SESSIONHUB_LOG_FORMAT", "xml", "json, text"},
	{"SESSIONHUB_LOG_LEVEL", "loud", "debug, info, warn or error"},
}

func TestConfigInvalid(t *testing.T) {
	t.Parallel()
	for _, tc := range invalidCases {
		t.Run(tc.env+"="+tc.value, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{tc.env: tc.value}
			if tc.env == "REDIS_URL" || tc.env == "DATABASE_URL" {
				for k, v := range pairs[tc.env] {
					env[k] = v
				}
			}
			_, err := parse(t, env)
			require.Error(t, err)
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "want a ConfigError, got %T %v", err, err)
			msg := err.Error()
			require.Contains(t, msg, tc.env)
			require.Contains(t, msg, tc.want)
			require.NotContains(t, msg, "\n")

			var out bytes.Buffer
			require.Equal(t, 2, report(err, &out))
			require.Equal(t, 1, strings.Count(out.String(), "\n"), "one line: %q", out.String())

			// From the flag, the error names the flag and the variable.
			_, err = parse(t, pairsOnly(tc.env), "--"+flagOf(t, tc.env)+"="+tc.value)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			if !crossField[tc.env+"="+tc.value] {
				require.Contains(t, err.Error(), "--"+flagOf(t, tc.env))
			}
		})
	}
}

// crossField cases fail on a relation between settings; their error names
// the variable to fix rather than the flag.
var crossField = map[string]bool{
	"GOOGLE_CLIENT_SECRET=only-secret": true,
}

func pairsOnly(env string) map[string]string {
	if env == "REDIS_URL" || env == "DATABASE_URL" {
		return pairs[env]
	}
	return nil
}

func flagOf(t *testing.T, env string) string {
	t.Helper()
	for _, s := range settings() {
		if s.env == env {
			return s.flag
		}
	}
	t.Fatalf("no setting %s", env)
	return ""
}

// TestConfigTableCovered fails when a variable is added to the table
// without valid and invalid cases.
func TestConfigTableCovered(t *testing.T) {
	t.Parallel()
	valid, invalid := map[string]bool{}, map[string]bool{}
	for _, c := range validCases {
		valid[c.env] = true
	}
	for _, c := range pairedValid {
		valid[c.env] = true
	}
	for _, c := range invalidCases {
		invalid[c.env] = true
	}
	for _, s := range settings() {
		require.True(t, valid[s.env], "no valid case for %s", s.env)
		require.True(t, invalid[s.env], "no invalid case for %s", s.env)
	}
}

func TestConfigPort(t *testing.T) {
	t.Parallel()
	c, err := parse(t, map[string]string{"PORT": "3000", "SESSIONHUB_ADDR": "127.0.0.1:9999"})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9999", c.Addr, "SESSIONHUB_ADDR wins over PORT")

	c, err = parse(t, map[string]string{"PORT": "3000"}, "--addr=:7000")
	require.NoError(t, err)
	require.Equal(t, ":7000", c.Addr, "--addr wins over PORT")

	c, err = parse(t, nil, "--port=4000")
	require.NoError(t, err)
	require.Equal(t, ":4000", c.Addr)
	require.Equal(t, "http://localhost:4000", c.PublicURL.String(), "the default public URL follows the port")
	require.Equal(t, []string{"http://localhost:4000"}, c.AllowedOrigins)

	c, err = parse(t, map[string]string{"SESSIONHUB_PUBLIC_URL": "https://auth.example.com"}, "--addr=:4000")
	require.NoError(t, err)
	require.Equal(t, "https://auth.example.com", c.PublicURL.String(), "an explicit public URL stays")
}

func TestConfigOnlyOneStore(t *testing.T) {
	t.Parallel()
	_, err := parse(t, map[string]string{"REDIS_URL": "redis://127.0.0.1:6379"})
	require.ErrorContains(t, err, "DATABASE_URL")
	require.ErrorContains(t, err, "neither for the single-node in-memory mode")

	_, err = parse(t, map[string]string{"DATABASE_URL": "postgres://root@127.0.0.1/test"})
	require.ErrorContains(t, err, "REDIS_URL")
}

func TestConfigSecretsNotEchoed(t *testing.T) {
	t.Parallel()
	_, err := parse(t, map[string]string{
		"REDIS_URL": "http://user:hunter2@redis:6379", "DATABASE_URL": "postgres://root@127.0.0.1/test",
	})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")

	_, err = parse(t, map[string]string{"GOOGLE_CLIENT_ID": "x", "GOOGLE_CLIENT_SECRET": "has hunter2 space"})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")
}

func TestConfigFlags(t *testing.T) {
	t.Parallel()
	c, err := parse(t, nil, "--migrate", "--drain", "1s")
	require.NoError(t, err)
	require.True(t, c.Migrate)
	require.Equal(t, time.Second, c.Drain)

	_, err = parse(t, nil, "--no-such-flag")
	require.Error(t, err)
	require.Equal(t, 2, report(err, io.Discard))

	_, err = parse(t, nil, "extra")
	require.Error(t, err)
	require.Equal(t, 2, report(err, io.Discard))

	_, err = parse(t, nil, "--help")
	require.Equal(t, 0, report(err, io.Discard))
}

func TestRedisOptions(t *testing.T) {
	t.Parallel()
	one, err := redisOptions("redis://:pw@10.0.0.1:6380/3")
	require.NoError(t, err)
	require.Equal(t, "10.0.0.1:6380", one.single.Addr)
	require.Equal(t, 3, one.single.DB)
	require.Equal(t, "pw", one.single.Password)

	list, err := redisOptions("redis://:pw@a:7000, b:7001")
	require.NoError(t, err)
	require.Equal(t, []string{"a:7000", "b:7001"}, list.cluster.Addrs)
	require.Equal(t, "pw", list.cluster.Password)

	cl, err := redisOptions("redis+cluster://u:pw@a:7000,b:7001,c:7002?dial_timeout=2s")
	require.NoError(t, err)
	require.Equal(t, []string{"a:7000", "b:7001", "c:7002"}, cl.cluster.Addrs)
	require.Equal(t, "u", cl.cluster.Username)
	require.Equal(t, 2*time.Second, cl.cluster.DialTimeout)

	_, err = redisOptions("redis://a:7000/1,redis://b:7001/1")
	require.ErrorContains(t, err, "database 0")
}
