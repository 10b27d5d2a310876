package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// The parsers of single configuration values. Each returns an error that
// says what is wrong with the value in a few words; ConfigError adds the
// variable's name.

// durationIn returns a setter for a duration between lo and hi (hi 0: no
// upper bound).
func durationIn(field func(*Config) *time.Duration, lo, hi time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("not a duration (use e.g. 30s, 15m, 12h)")
		}
		if d < lo {
			if lo == 0 {
				return errors.New("must not be negative")
			}
			return fmt.Errorf("must be at least %s", lo)
		}
		if hi > 0 && d > hi {
			return fmt.Errorf("must be at most %s", hi)
		}
		*field(c) = d
		return nil
	}
}

func checkAddr(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return errors.New("not a listen address (use host:port or :port)")
	}
	if strings.ContainsAny(host, " /") {
		return errors.New("bad host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return errors.New("port must be a number from 0 to 65535")
	}
	return nil
}

func checkPort(v string) error {
	if v == "" {
		return nil
	}
	if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 65535 {
		return errors.New("must be a port number from 1 to 65535")
	}
	return nil
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errors.New("must be true or false")
	}
	return b, nil
}

func parsePositiveInt(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, errors.New("must be a whole number of at least 1")
	}
	return n, nil
}

func parseSameSite(v string) (http.SameSite, error) {
	switch strings.ToLower(v) {
	case "none":
		return http.SameSiteNoneMode, nil
	case "lax":
		return http.SameSiteLaxMode, nil
	case "strict":
		return http.SameSiteStrictMode, nil
	}
	return 0, errors.New("must be none, lax or strict")
}

func checkOneOf(v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	var shown []string
	for _, a := range allowed {
		if a != "" {
			shown = append(shown, a)
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(shown, ", "))
}

func parseLogLevel(v string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		return 0, errors.New("must be debug, info, warn or error")
	}
	return l, nil
}

func checkNoSpace(v string) error {
	if strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' }) {
		return errors.New("must not contain spaces or control characters")
	}
	return nil
}

func checkPrefix(v string) error {
	if v == "" {
		return errors.New("must not be empty: every key and channel needs a prefix")
	}
	if len(v) > 64 {
		return errors.New("longer than 64 bytes")
	}
	return checkNoSpace(v)
}

// sizeUnits are the suffixes parseSize understands, longest first.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// minSendQueue is the largest message a socket may receive (64 KiB): a
// smaller queue would call every such message a slow consumer.
const minSendQueue = 64 << 10

// parseSize reads "64KiB", "1MiB" or plain bytes.
func parseSize(v string) (int, error) {
	num, mult := v, int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(v, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(v, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("not a size (use e.g. 65536, 64KiB or 1MiB)")
	}
	if n > (1<<31)/mult {
		return 0, errors.New("larger than 2GiB")
	}
	if n*mult < minSendQueue {
		return 0, errors.New("must be at least 64KiB, the largest message")
	}
	return int(n * mult), nil
}

// parseCIDRs reads a comma-separated list of CIDRs; a bare address counts
// as a single host.
func parseCIDRs(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range splitList(v, ",") {
		if !strings.Contains(item, "/") {
			a, err := netip.ParseAddr(item)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8", item)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8", item)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// parseOrigins reads a comma-separated list of origins, each exactly
// scheme://host[:port] as browsers send them in Origin.
func parseOrigins(v string) ([]string, error) {
	var out []string
	for _, item := range splitList(v, ",") {
		o, err := parseOrigin(item)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

func parseOrigin(item string) (string, error) {
	bad := fmt.Errorf("%q is not an origin scheme://host[:port] (no path, no trailing slash, no wildcard)", item)
	u, err := url.Parse(item)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" ||
		u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" ||
		strings.ContainsAny(item, "*?#") {
		return "", bad
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", bad
		}
	}
	// Lower-cased and without a default port, as a browser's Origin
	// header is: "https://App.example:443" must match "https://app.example".
	o := strings.ToLower(u.Scheme + "://" + u.Host)
	if u.Scheme == "https" {
		o = strings.TrimSuffix(o, ":443")
	} else {
		o = strings.TrimSuffix(o, ":80")
	}
	return o, nil
}

// parsePublicURL reads an absolute http(s) base URL; a path is refused
// because every route is served from the root.
func parsePublicURL(v string) (*url.URL, error) {
	o, err := parseOrigin(strings.TrimSuffix(v, "/"))
	if err != nil {
		return nil, errors.New("must be an absolute http or https URL with no path, such as https://auth.example.com")
	}
	return url.Parse(o)
}

func originOf(u *url.URL) string { return u.Scheme + "://" + u.Host }

// parseIssuer reads the OIDC issuer: https, or http on a loopback host for
// a local test provider.
func parseIssuer(v string) (string, error) {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("must be an absolute URL such as https://accounts.google.com")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return "", errors.New("must use https (http only for a loopback test provider)")
		}
	default:
		return "", errors.New("must be an https URL")
	}
	return v, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// checkRedisURL accepts redis:// or rediss:// URLs, a comma-separated list
// of them (or of host:port), and redis+cluster://.
func checkRedisURL(v string) error {
	if v == "" {
		return nil
	}
	_, err := redisOptions(v)
	return err
}

func checkDatabaseURL(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return errors.New("must be a postgres:// URL")
	}
	if _, err := pgxConfig(v); err != nil {
		return errors.New("not a valid Postgres connection URL")
	}
	return nil
}

// parseDefaultScopes reads space-separated sub:/pub: scopes. admin is
// refused: it would make every new user an administrator.
func parseDefaultScopes(v string) ([]string, error) {
	scopes := strings.Fields(v)
	for _, s := range scopes {
		if s == "admin" {
			return nil, errors.New("must not contain admin (every new user would be an administrator)")
		}
		if err := checkScope(s); err != nil {
			return nil, err
		}
	}
	return scopes, nil
}

// checkScope accepts admin, sub:<pattern> and pub:<pattern>, where * may
// only be the pattern's last character.
func checkScope(s string) error {
	if s == "admin" {
		return nil
	}
	kind, pattern, ok := strings.Cut(s, ":")
	if !ok || (kind != "sub" && kind != "pub") || pattern == "" {
		return fmt.Errorf("scope %q is not admin, sub:<pattern> or pub:<pattern>", s)
	}
	if i := strings.IndexByte(pattern, '*'); i >= 0 && i != len(pattern)-1 {
		return fmt.Errorf("scope %q: * may only be the last character", s)
	}
	return checkNoSpace(pattern)
}

func splitList(v, sep string) []string {
	var out []string
	for _, item := range strings.Split(v, sep) {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// checkReadable makes sure a configured file can be opened now, so that a
// wrong path stops start-up with the variable's name.
func checkReadable(path string) error {
	if path == "" {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return errors.New("cannot read the file: " + strings.TrimPrefix(err.Error(), "stat "+path+": "))
	}
	if !fi.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	f, err := os.Open(path)
	if err != nil {
		return errors.New("cannot read the file: permission denied")
	}
	return f.Close()
}
