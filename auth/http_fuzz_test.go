package auth

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sessionhub/sessionhub/sessions"
)

// FuzzDecodeRequest feeds arbitrary bodies to the request decoder for every
// request type: it must never panic, and must accept only a single object.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"email":"a@b.c","password":"12345678"}`,
		`{"email":"a@b.c","password":"12345678","device":"Pixel 8"}`,
		`{"refresh_token":"x.shr_y"}`,
		`{"current_password":"a","new_password":"b"}`,
		`{"email":"a@b.c","scopes":["admin"]}`,
		`{"email":1}`, `[]`, `null`, `{} {}`, `{"a":`, "\xff", ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, dst := range []any{&loginRequest{}, &signupRequest{}, &refreshRequest{}, &passwordRequest{}, &adminCreateUserRequest{}} {
			err := decodeBody(bytes.NewReader(data), dst)
			if err == nil && !bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{")) {
				t.Fatalf("accepted a non-object: %q", data)
			}
			if err != nil {
				if st, _, _, known := httpError(err); !known || (st != 400 && st != 413) {
					t.Fatalf("decode error maps to %d (known=%v): %v", st, known, err)
				}
			}
		}
	})
}

// FuzzCookieHeader parses arbitrary Cookie headers: no panic, and what
// comes out is bounded and is the first session cookie's value.
func FuzzCookieHeader(f *testing.F) {
	tok := sessions.NewToken().String()
	for _, s := range []string{
		CookieName + "=" + tok,
		"a=b; " + CookieName + "=" + tok + "; c=d",
		CookieName + "=; " + CookieName + "=" + tok,
		CookieName + `="quoted"`, "garbage", "", ";;;=;", CookieName + "=" + strings.Repeat("A", 300),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", header)
		v := cookieToken(r)
		if len(v) > maxCookieValue {
			t.Fatalf("unbounded cookie value %d bytes", len(v))
		}
		if v != "" && !strings.Contains(header, v) {
			t.Fatalf("value %q not from header %q", v, header)
		}
	})
}

// FuzzParseSessionToken checks sessions.ParseToken, which every cookie and
// Authorization: Session header goes through: no panic, and an accepted
// token round-trips and has the documented shape.
func FuzzParseSessionToken(f *testing.F) {
	for _, s := range []string{sessions.NewToken().String(), "a.b", ".", "", "x." + sessions.SecretPrefix,
		strings.Repeat("A", 22) + "." + sessions.SecretPrefix + strings.Repeat("B", 43), "\x00.\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := sessions.ParseToken(s)
		if err != nil {
			return
		}
		if tok.String() != s || !sessions.ValidID(tok.ID) || !strings.HasPrefix(tok.Secret, sessions.SecretPrefix) {
			t.Fatalf("accepted %q as %+v", s, tok)
		}
	})
}

// FuzzAuthenticateHeader drives the session middleware's header parsing on
// a store that knows no session: everything is a 401, nothing panics.
func FuzzAuthenticateHeader(f *testing.F) {
	f.Add("Session " + sessions.NewToken().String())
	f.Add("Bearer x.y.z")
	f.Add("session  ")
	f.Add("Session " + strings.Repeat("a", 400))
	mem := sessions.NewMemory(nil)
	store, err := sessions.New(sessions.Config{}, mem, mem, mem)
	if err != nil {
		f.Fatal(err)
	}
	s := &Server{store: store}
	s.metrics, _ = newMetrics(nil)
	f.Fuzz(func(t *testing.T, authz string) {
		r := httptest.NewRequest("GET", "/session", nil).WithContext(context.Background())
		r.Header.Set("Authorization", authz)
		if _, err := s.authenticate(r); err == nil {
			t.Fatalf("authenticated %q", authz)
		} else if st, _, _, _ := httpError(err); st != http.StatusUnauthorized {
			t.Fatalf("%q → %d", authz, st)
		}
	})
}

// FuzzPHC parses stored password hashes: never a panic, and parameters out
// of the allowed bounds are refused before any hashing.
func FuzzPHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
	f.Add("$argon2id$v=19$m=4294967295,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2i$v=19$m=1,t=1,p=1$$")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, _, _, err := parsePHC(s)
		if err == nil && (p.memory > maxStoredMemory || p.time > maxStoredTime || p.threads > maxStoredThreads) {
			t.Fatalf("accepted costly params %+v", p)
		}
	})
}
