package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Config is every setting of API.md's configuration table, parsed once from
// the environment and the flags of `serve` (a flag wins over its variable).
// Fields hold parsed, validated values; nothing downstream reads the
// environment again.
type Config struct {
	Addr               string
	MetricsAddr        string
	PublicURL          *url.URL // scheme://host[:port], no path
	RedisURL           string   // empty with DatabaseURL empty: in-memory mode
	DatabaseURL        string
	RedisPrefix        string
	SessionTTL         time.Duration
	SessionMaxAge      time.Duration
	CookieSameSite     http.SameSite
	CookiePartitioned  bool
	RefreshGrace       time.Duration
	TrustedProxies     []netip.Prefix
	Drain              time.Duration
	TokenTTL           time.Duration
	KeysFile           string // empty: ephemeral key
	AllowedOrigins     []string
	Heartbeat          time.Duration
	SweepInterval      time.Duration
	SendQueue          int // bytes
	MaxSocketsPerUser  int
	DefaultScopes      []string
	GoogleClientID     string
	GoogleClientSecret string
	OIDCIssuer         string

	// LogFormat is "json" or "text"; SESSIONHUB_LOG_FORMAT, or by default
	// text in memory mode (a developer's terminal) and JSON otherwise.
	LogFormat string
	LogLevel  slog.Level

	// Migrate applies pending migrations before serving (serve --migrate).
	Migrate bool
}

// Memory reports whether the server runs on the in-memory backends.
func (c *Config) Memory() bool { return c.RedisURL == "" && c.DatabaseURL == "" }

// GoogleEnabled reports whether Google login is configured.
func (c *Config) GoogleEnabled() bool { return c.GoogleClientID != "" }

// setting is one row of the configuration table: its variable, its flag,
// its default (as text, parsed like any other value) and how to store it.
type setting struct {
	env, flag, def, usage string
	// secret settings never have their value echoed in an error (URLs with
	// passwords, client secrets).
	secret bool
	set    func(c *Config, v string) error
}

// settings is the configuration table. Order is the order of --help.
func settings() []setting {
	return []setting{
		{env: "SESSIONHUB_ADDR", flag: "addr", def: ":8080", usage: "public HTTP + WebSocket listener",
			set: func(c *Config, v string) error { c.Addr = v; return checkAddr(v) }},
		{env: "PORT", flag: "port", usage: "listen on :PORT when SESSIONHUB_ADDR is not set (Cloud Run)",
			set: func(c *Config, v string) error { return checkPort(v) }},
		{env: "SESSIONHUB_METRICS_ADDR", flag: "metrics-addr", def: "127.0.0.1:9090", usage: "/metrics and /debug listener, keep it off the public port",
			set: func(c *Config, v string) error { c.MetricsAddr = v; return checkAddr(v) }},
		{env: "SESSIONHUB_PUBLIC_URL", flag: "public-url", def: "http://localhost:8080", usage: "external base URL (OAuth redirect, cookie decisions)",
			set: func(c *Config, v string) (err error) { c.PublicURL, err = parsePublicURL(v); return err }},
		{env: "REDIS_URL", flag: "redis-url", secret: true, usage: "redis://…, a comma-separated list or redis+cluster://… (unset: in-memory)",
			set: func(c *Config, v string) error { c.RedisURL = v; return checkRedisURL(v) }},
		{env: "DATABASE_URL", flag: "database-url", secret: true, usage: "postgres://… (unset: in-memory)",
			set: func(c *Config, v string) error { c.DatabaseURL = v; return checkDatabaseURL(v) }},
		{env: "SESSIONHUB_REDIS_PREFIX", flag: "redis-prefix", def: "sh:", usage: "prefix of every Redis key and pub/sub channel",
			set: func(c *Config, v string) error { c.RedisPrefix = v; return checkPrefix(v) }},
		{env: "SESSIONHUB_SESSION_TTL", flag: "session-ttl", def: "12h", usage: "sliding idle timeout",
			set: durationIn(func(c *Config) *time.Duration { return &c.SessionTTL }, time.Minute, 0)},
		{env: "SESSIONHUB_SESSION_MAX_AGE", flag: "session-max-age", def: "168h", usage: "absolute session lifetime",
			set: durationIn(func(c *Config) *time.Duration { return &c.SessionMaxAge }, time.Minute, 0)},
		{env: "SESSIONHUB_COOKIE_SAMESITE", flag: "cookie-samesite", def: "none", usage: "none, lax or strict",
			set: func(c *Config, v string) (err error) { c.CookieSameSite, err = parseSameSite(v); return err }},
		{env: "SESSIONHUB_COOKIE_PARTITIONED", flag: "cookie-partitioned", def: "false", usage: "add Partitioned (CHIPS) to the cookie",
			set: func(c *Config, v string) (err error) { c.CookiePartitioned, err = parseBool(v); return err }},
		{env: "SESSIONHUB_REFRESH_GRACE", flag: "refresh-grace", def: "30s", usage: "window in which re-presenting a just-rotated refresh token is a retry",
			// 0 is allowed (no retries); past 5m a stolen token is usable too long.
			set: durationIn(func(c *Config) *time.Duration { return &c.RefreshGrace }, 0, 5*time.Minute)},
		{env: "SESSIONHUB_TRUSTED_PROXIES", flag: "trusted-proxies", usage: "comma-separated CIDRs whose X-Forwarded-For is believed",
			set: func(c *Config, v string) (err error) { c.TrustedProxies, err = parseCIDRs(v); return err }},
		{env: "SESSIONHUB_DRAIN", flag: "drain", def: "5s", usage: "on shutdown, the window over which sockets are closed",
			// At most 8s so that the whole shutdown fits API.md's 10 s.
			set: durationIn(func(c *Config) *time.Duration { return &c.Drain }, 0, maxDrain)},
		{env: "SESSIONHUB_TOKEN_TTL", flag: "token-ttl", def: "5m", usage: "socket/worker JWT lifetime",
			// Verifiers refuse exp-iat > 300 s (SECURITY.md item 24).
			set: durationIn(func(c *Config) *time.Duration { return &c.TokenTTL }, 10*time.Second, 5*time.Minute)},
		{env: "SESSIONHUB_KEYS_FILE", flag: "keys-file", usage: "JWK set with the Ed25519 signing keys (unset: ephemeral, dev only)",
			set: func(c *Config, v string) error { c.KeysFile = v; return checkReadable(v) }},
		{env: "SESSIONHUB_ALLOWED_ORIGINS", flag: "allowed-origins", usage: "comma-separated origins scheme://host[:port] allowed besides the public URL's own",
			set: func(c *Config, v string) (err error) { c.AllowedOrigins, err = parseOrigins(v); return err }},
		{env: "SESSIONHUB_HEARTBEAT", flag: "heartbeat", def: "25s", usage: "server ping interval on sockets",
			set: durationIn(func(c *Config) *time.Duration { return &c.Heartbeat }, time.Second, 10*time.Minute)},
		{env: "SESSIONHUB_SWEEP_INTERVAL", flag: "sweep-interval", def: "30s", usage: "how often each node re-checks the sessions of its live sockets",
			set: durationIn(func(c *Config) *time.Duration { return &c.SweepInterval }, time.Second, time.Hour)},
		{env: "SESSIONHUB_SEND_QUEUE", flag: "send-queue", def: "1MiB", usage: "bytes queued for one socket before it is a slow consumer (64KiB, 1MiB or bytes)",
			set: func(c *Config, v string) (err error) { c.SendQueue, err = parseSize(v); return err }},
		{env: "SESSIONHUB_MAX_SOCKETS_PER_USER", flag: "max-sockets-per-user", def: "32", usage: "cluster-wide socket limit per user",
			set: func(c *Config, v string) (err error) { c.MaxSocketsPerUser, err = parsePositiveInt(v); return err }},
		{env: "SESSIONHUB_DEFAULT_SCOPES", flag: "default-scopes", usage: "space-separated scopes every new user gets",
			set: func(c *Config, v string) (err error) { c.DefaultScopes, err = parseDefaultScopes(v); return err }},
		{env: "GOOGLE_CLIENT_ID", flag: "google-client-id", usage: "Google OAuth client id (unset: Google login off)",
			set: func(c *Config, v string) error { c.GoogleClientID = v; return checkNoSpace(v) }},
		{env: "GOOGLE_CLIENT_SECRET", flag: "google-client-secret", secret: true, usage: "Google OAuth client secret (prefer the variable: flags show in ps)",
			set: func(c *Config, v string) error { c.GoogleClientSecret = v; return checkNoSpace(v) }},
		{env: "SESSIONHUB_OIDC_ISSUER", flag: "oidc-issuer", def: "https://accounts.google.com", usage: "issuer of the Google login",
			set: func(c *Config, v string) (err error) { c.OIDCIssuer, err = parseIssuer(v); return err }},
		{env: "SESSIONHUB_LOG_FORMAT", flag: "log-format", usage: "json or text (default: text in memory mode, JSON otherwise)",
			set: func(c *Config, v string) error { c.LogFormat = v; return checkOneOf(v, "", "json", "text") }},
		{env: "SESSIONHUB_LOG_LEVEL", flag: "log-level", def: "info", usage: "debug, info, warn or error",
			set: func(c *Config, v string) (err error) { c.LogLevel, err = parseLogLevel(v); return err }},
	}
}

// maxDrain keeps drain + HTTP shutdown inside API.md's 10 s exit bound.
const maxDrain = 8 * time.Second

// ConfigError is a bad setting: it names the variable (and the flag when
// the value came from one) and says what is wrong, on one line.
type ConfigError struct {
	Name  string // the environment variable: "SESSIONHUB_DRAIN"
	Flag  string // "--drain" when the value came from the flag
	Value string // the offending value; empty for secret settings
	Err   error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("invalid ")
	if e.Flag != "" {
		b.WriteString(e.Flag)
	} else {
		b.WriteString(e.Name)
	}
	if e.Value != "" {
		fmt.Fprintf(&b, "=%q", e.Value)
	}
	if e.Flag != "" {
		b.WriteString(" (" + e.Name + ")")
	}
	b.WriteString(": " + e.Err.Error())
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// parseServeConfig reads every setting from getenv and from args (the flags
// of `serve`), flag over variable over default.
func parseServeConfig(args []string, getenv func(string) string, stderr io.Writer) (*Config, error) {
	table := settings()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flags := make([]*string, len(table))
	for i, s := range table {
		flags[i] = fs.String(s.flag, "", s.usage+" ($"+s.env+envDefault(s.def)+")")
	}
	migrate := fs.Bool("migrate", false, "apply pending database migrations before serving")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: sessionhub serve [--migrate] [flags]\n\nEvery flag also reads its environment variable; a flag wins.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, &usageError{err: err, quiet: true}
	}
	if fs.NArg() > 0 {
		return nil, &usageError{err: fmt.Errorf("serve takes no arguments, got %q", fs.Arg(0))}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	c := &Config{Migrate: *migrate}
	explicit := map[string]bool{} // env names given by flag or variable
	for i, s := range table {
		fromFlag, v := "", s.def
		switch {
		case given[s.flag]:
			fromFlag, v = "--"+s.flag, *flags[i]
			explicit[s.env] = true
		case getenv(s.env) != "":
			v = getenv(s.env)
			explicit[s.env] = true
		}
		v = strings.TrimSpace(v)
		if err := s.set(c, v); err != nil {
			shown := v
			if s.secret {
				shown = ""
			}
			return nil, &ConfigError{Name: s.env, Flag: fromFlag, Value: shown, Err: err}
		}
		if s.env == "PORT" && v != "" && !explicit["SESSIONHUB_ADDR"] {
			c.Addr = ":" + v
		}
	}
	if !explicit["SESSIONHUB_PUBLIC_URL"] {
		c.PublicURL = defaultPublicURL(c.Addr)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

func envDefault(def string) string {
	if def == "" {
		return ""
	}
	return ", default " + def
}

// defaultPublicURL is http://localhost:<port> of the listener, so that a
// developer who moves the port (--addr :3000) still gets working pages and
// sockets from the browser; http://localhost:8080 by default and for
// port 0 (tests).
func defaultPublicURL(addr string) *url.URL {
	_, port, _ := net.SplitHostPort(addr)
	if port == "" || port == "0" {
		port = "8080"
	}
	return &url.URL{Scheme: "http", Host: "localhost:" + port}
}

// check validates what involves several settings.
func (c *Config) check() error {
	// An absolute lifetime shorter than the idle timeout is a choice (short
	// sessions), not a mistake: the session simply ends at its max age.
	c.SessionTTL = min(c.SessionTTL, c.SessionMaxAge)
	if (c.RedisURL == "") != (c.DatabaseURL == "") {
		set, unset := "REDIS_URL", "DATABASE_URL"
		if c.RedisURL == "" {
			set, unset = unset, set
		}
		return &ConfigError{Name: unset, Err: fmt.Errorf(
			"must be set when %s is: set both for Redis + Postgres, or neither for the single-node in-memory mode", set)}
	}
	if (c.GoogleClientID == "") != (c.GoogleClientSecret == "") {
		set, unset := "GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET"
		if c.GoogleClientID == "" {
			set, unset = unset, set
		}
		return &ConfigError{Name: unset, Err: fmt.Errorf("must be set when %s is: Google login needs both", set)}
	}
	// The public URL's own pages (log in, live socket demo) must always be
	// allowed, whatever other origins are listed.
	if pub := originOf(c.PublicURL); !slices.Contains(c.AllowedOrigins, pub) {
		c.AllowedOrigins = append([]string{pub}, c.AllowedOrigins...)
	}
	if c.LogFormat == "" {
		c.LogFormat = "json"
		if c.Memory() {
			c.LogFormat = "text"
		}
	}
	return nil
}
