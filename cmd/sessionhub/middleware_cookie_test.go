package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/auth"
	"github.com/sessionhub/sessionhub/sessions"
)

// TestSessionCookieMatchesNetHTTP: the access log's cookie scan finds what
// r.Cookie finds, on well-formed, quoted, duplicated and broken headers.
func TestSessionCookieMatchesNetHTTP(t *testing.T) {
	t.Parallel()
	n := auth.CookieName
	cases := [][]string{
		nil,
		{""},
		{n + "=abc.def"},
		{"a=1; " + n + "=abc.def; b=2"},
		{"a=1", n + "=second"},
		{n + "=first; " + n + "=second"},
		{n + `="quoted"`},
		{n + `="bad"quote"`},
		{n + "=bad\\slash; " + n + "=good"},
		{n + "=; other=x"},
		{n + "x=nope; " + n + "=yes"},
		{"  " + n + "=spaced  ; z=1"},
		{n},
		{"=" + n},
		{n + "=a=b=c"},
	}
	for _, lines := range cases {
		r := &http.Request{Header: http.Header{}}
		if lines != nil {
			r.Header["Cookie"] = lines
		}
		want, err := r.Cookie(n)
		got, ok := sessionCookie(lines)
		require.Equal(t, err == nil, ok, "%q", lines)
		if ok {
			require.Equal(t, want.Value, got, "%q", lines)
		}
	}
}

// TestPresentedSessionID: the access log's session id comes from the
// cookie or a "Session" authorization only, never from another scheme.
func TestPresentedSessionID(t *testing.T) {
	t.Parallel()
	tok := sessions.NewToken().String()
	id, _, _ := strings.Cut(tok, ".")
	for _, c := range []struct {
		header, value, want string
	}{
		{"Cookie", auth.CookieName + "=" + tok, id},
		{"Authorization", "Session " + tok, id},
		{"Authorization", tok, ""},
		{"Authorization", "Bearer " + tok, ""},
		{"Authorization", "Session not-a-token", ""},
	} {
		r := &http.Request{Header: http.Header{c.header: {c.value}}}
		require.Equal(t, c.want, presentedSessionID(r), "%s: %s", c.header, c.value)
	}
}
