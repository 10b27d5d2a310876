package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// argonParams are the argon2id cost parameters of one PHC string.
type argonParams struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
}

// defaultArgon is OWASP's argon2id minimum (m=19 MiB, t=2, p=1): ~30-60 ms
// on one core here, and 19 MiB of memory per hash in flight.
var defaultArgon = argonParams{memory: 19456, time: 2, threads: 1}

const (
	saltLen = 16 // 128-bit salt, PHC recommendation
	keyLen  = 32 // 256-bit derived key
	// minPasswordChars and maxPasswordBytes are API.md's bounds: the
	// minimum counts characters (what a person sees), the maximum counts
	// bytes (what the hash costs). Longer passwords are refused, never
	// truncated.
	minPasswordChars = 8
	maxPasswordBytes = 1024
	// hashWait bounds how long a request queues for a hash slot before it
	// answers 503: a login flood then fails fast instead of piling up.
	hashWait = 5 * time.Second
	// maxStoredMemory etc. bound the cost a stored PHC string may ask for,
	// so a corrupt or hostile row cannot make one login allocate gigabytes.
	maxStoredMemory  = 1 << 20 // 1 GiB
	maxStoredTime    = 16
	maxStoredThreads = 16
)

var phcB64 = base64.RawStdEncoding

// errBadHash means a stored password hash that is not a PHC argon2id string.
var errBadHash = errors.New("auth: malformed password hash")

// checkPassword applies the length rule before any hashing.
func checkPassword(pw string) error {
	if len(pw) > maxPasswordBytes || utf8.RuneCountInString(pw) < minPasswordChars {
		return ErrWeakPassword
	}
	return nil
}

// hasher runs argon2id with a bound on concurrent hashes: each costs 19 MiB,
// so GOMAXPROCS slots cap a login flood's memory at a few dozen MiB and keep
// the CPU for everything else.
type hasher struct {
	params argonParams
	slots  chan struct{}
	dummy  string        // a PHC hash of a random password, for unknown users
	count  atomic.Uint64 // hashes run, for tests of the dummy hash
}

func newHasher(p argonParams) (*hasher, error) {
	h := &hasher{params: p, slots: make(chan struct{}, runtime.GOMAXPROCS(0))}
	var pw [24]byte
	_, _ = rand.Read(pw[:])
	d, err := h.hashWith(context.Background(), base64.RawURLEncoding.EncodeToString(pw[:]), p)
	if err != nil {
		return nil, err
	}
	h.dummy = d
	h.count.Store(0)
	return h, nil
}

func (h *hasher) acquire(ctx context.Context) error {
	t := time.NewTimer(hashWait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for a hash slot: %v", ErrUnavailable, ctx.Err())
	case <-t.C:
		return fmt.Errorf("%w: hash slots busy", ErrUnavailable)
	}
}

func (h *hasher) release() { <-h.slots }

// Hash returns the PHC string of pw with the default parameters.
func (h *hasher) Hash(ctx context.Context, pw string) (string, error) {
	if err := checkPassword(pw); err != nil {
		return "", err
	}
	return h.hashWith(ctx, pw, h.params)
}

func (h *hasher) hashWith(ctx context.Context, pw string, p argonParams) (string, error) {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt)
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, p.time, p.memory, p.threads, keyLen)
	h.release()
	h.count.Add(1)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		p.memory, p.time, p.threads, phcB64.EncodeToString(salt), phcB64.EncodeToString(key)), nil
}

// Verify compares pw with a stored PHC string in constant time. An empty
// stored hash (no password on the account) verifies against the dummy hash
// and fails, so it costs the same as a wrong password. rehash is true when
// the stored parameters are weaker than the current ones.
func (h *hasher) Verify(ctx context.Context, pw, stored string) (ok, rehash bool, err error) {
	real := stored != ""
	if !real {
		stored = h.dummy
	}
	p, salt, want, perr := parsePHC(stored)
	if perr != nil {
		// Run the dummy anyway so a corrupt row costs the same.
		p, salt, want, _ = parsePHC(h.dummy)
		real = false
	}
	if len(pw) > maxPasswordBytes {
		// Never hashed: a password this long cannot be right. Both the
		// known and the unknown account paths take this branch alike.
		return false, false, perr
	}
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	got := argon2.IDKey([]byte(pw), salt, p.time, p.memory, p.threads, uint32(len(want)))
	h.release()
	h.count.Add(1)
	match := subtle.ConstantTimeCompare(got, want) == 1 && real
	weaker := p.memory < h.params.memory || p.time < h.params.time || p.threads != h.params.threads ||
		len(salt) < saltLen || len(want) < keyLen
	return match, match && weaker, perr
}

// parsePHC reads "$argon2id$v=19$m=..,t=..,p=..$salt$hash".
func parsePHC(s string) (argonParams, []byte, []byte, error) {
	var p argonParams
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, errBadHash
	}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, nil, nil, errBadHash
		}
		switch k {
		case "m":
			p.memory = uint32(n)
		case "t":
			p.time = uint32(n)
		case "p":
			if n > 255 {
				return p, nil, nil, errBadHash
			}
			p.threads = uint8(n)
		default:
			return p, nil, nil, errBadHash
		}
	}
	if p.time < 1 || p.time > maxStoredTime || p.threads < 1 || p.threads > maxStoredThreads ||
		p.memory < 8*uint32(p.threads) || p.memory > maxStoredMemory {
		return p, nil, nil, errBadHash
	}
	salt, err1 := phcB64.DecodeString(parts[4])
	key, err2 := phcB64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, errBadHash
	}
	return p, salt, key, nil
}
