package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/auth"
	"github.com/sessionhub/sessionhub/internal/testenv"
	"github.com/sessionhub/sessionhub/migrations"
	"github.com/sessionhub/sessionhub/sessions"
)

// cli runs one command line and returns stdout, stderr and the exit code.
func cli(t *testing.T, env map[string]string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"sessionhub"}, args...), envOf(env), strings.NewReader(stdin), &stdout, &stderr)
	code := report(err, &stderr)
	return stdout.String(), stderr.String(), code
}

func TestCLIUsage(t *testing.T) {
	t.Parallel()
	_, stderr, code := cli(t, nil, "", "frobnicate")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, `unknown command "frobnicate"`)
	require.Contains(t, stderr, "usage: sessionhub <command>")

	_, _, code = cli(t, nil, "")
	require.Equal(t, 2, code)

	stdout, _, code := cli(t, nil, "", "help")
	require.Equal(t, 0, code)
	require.Contains(t, stdout, "serve [--migrate]")

	_, _, code = cli(t, nil, "", "keys", "rotate")
	require.Equal(t, 2, code)
	_, _, code = cli(t, nil, "", "user", "frob", "--email", "a@b.io")
	require.Equal(t, 2, code)
}

func TestCLIKeysGenerate(t *testing.T) {
	t.Parallel()
	stdout, _, code := cli(t, nil, "", "keys", "generate")
	require.Equal(t, 0, code)
	keys, err := auth.ParseKeySet([]byte(stdout))
	require.NoError(t, err)
	require.NotEmpty(t, keys.ActiveKID())
	require.Contains(t, stdout, `"d"`, "the private part is included")
}

func TestCLINeedsDatabase(t *testing.T) {
	t.Parallel()
	_, stderr, code := cli(t, nil, "", "migrate")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "DATABASE_URL")

	_, stderr, code = cli(t, nil, "pw\n", "user", "add", "--email", "a@b.io")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "DATABASE_URL")
}

func TestCLIMigrateAndUsers(t *testing.T) {
	t.Parallel()
	_, prefix := testenv.Redis(t)
	env := map[string]string{
		"REDIS_URL": testenv.RedisURL(), "DATABASE_URL": emptySchemaURL(t), "SESSIONHUB_REDIS_PREFIX": prefix,
	}

	// Before migrating, the user commands refuse the empty schema.
	_, stderr, code := cli(t, env, "pw\n", "user", "add", "--email", "ops@example.com")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "sessionhub migrate")

	stdout, stderr, code := cli(t, env, "", "migrate")
	require.Equal(t, 0, code, stderr)
	latest := migrations.Latest()
	require.Equal(t, fmt.Sprintf("migrated schema from version 0 to %d\n", latest), stdout)
	stdout, _, code = cli(t, env, "", "migrate")
	require.Equal(t, 0, code)
	require.Contains(t, stdout, fmt.Sprintf("already at version %d", latest))

	stdout, stderr, code = cli(t, env, "a long enough password\nignored\n", "user", "add", "--email", "Ops@Example.com", "--name", "Ops", "--admin")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "created user")
	require.Contains(t, stdout, `scopes="admin"`)
	require.NotContains(t, stdout, "a long enough password")

	_, stderr, code = cli(t, env, "another password\n", "user", "add", "--email", "ops@example.com")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "already exists")
	_, stderr, code = cli(t, env, "", "user", "add", "--email", "x@example.com")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "no password")

	stdout, stderr, code = cli(t, env, "", "user", "grant", "--email", "ops@example.com", "--scope", "pub:room:*", "sub:room:*")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "pub:room:*")
	require.Contains(t, stdout, "sub:room:*")
	_, stderr, code = cli(t, env, "", "user", "grant", "--email", "nobody@example.com", "--scope", "sub:x")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "no user")

	// session create prints the token alone; the session carries exactly
	// the given scopes.
	stdout, stderr, code = cli(t, env, "", "session", "create", "--email", "ops@example.com", "--service", "worker-1", "--scope", "pub:room:*")
	require.Equal(t, 0, code, stderr)
	token := strings.TrimSuffix(stdout, "\n")
	require.NotContains(t, token, "\n")
	tok, err := sessions.ParseToken(token)
	require.NoError(t, err)

	_, stderr, code = cli(t, env, "", "session", "create", "--email", "ops@example.com", "--service", "w", "--scope", "pub:other:*")
	require.Equal(t, 1, code, "a scope the user does not hold")
	require.Contains(t, stderr, "scope")

	// The service token works against a server on the same stores.
	s := startServer(t, env)
	req, _ := http.NewRequest(http.MethodPost, s.url+"/session/token", nil)
	req.Header.Set("Authorization", "Session "+token)
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.NotEmpty(t, s.waitLogLine(`"route":"/session/token"`), "the access log has the request")
	require.NotContains(t, s.logs.String(), tok.Secret, "the access log holds no secret")

	stdout, stderr, code = cli(t, env, "", "session", "revoke", tok.ID)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "revoked session "+tok.ID)
	resp, err = s.client.Do(req.Clone(context.Background()))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "revoked from the shell, refused by the server")

	_, stderr, code = cli(t, env, "", "session", "revoke", tok.ID)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "no live session")
	// An id is base64url: one in 64 begins with '-', and is still an id.
	for _, args := range [][]string{{"-Lur2REovGLqz73yn7y1Ng"}, {"--", "-Lur2REovGLqz73yn7y1Ng"}} {
		_, stderr, code = cli(t, env, "", append([]string{"session", "revoke"}, args...)...)
		require.Equal(t, 1, code, stderr)
		require.Contains(t, stderr, `no live session "-Lur2REovGLqz73yn7y1Ng"`)
	}
	_, _, code = cli(t, env, "", "session", "revoke")
	require.Equal(t, 2, code, "no id")
	_, _, code = cli(t, env, "", "session", "revoke", "a", "b")
	require.Equal(t, 2, code, "two ids")

	stdout, stderr, code = cli(t, env, "", "user", "logout-all", "--email", "ops@example.com")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "revoked 0 sessions")
	require.NoError(t, s.shutdown())
}
