package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/auth"
	"github.com/sessionhub/sessionhub/internal/testenv"
)

// benchCluster starts two nodes on one Redis prefix and one schema, sharing
// a signing key (a token minted on one node opens sockets on the other),
// and returns them with the environment the bench needs.
func benchCluster(t *testing.T) ([]*server, map[string]string) {
	t.Helper()
	_, prefix := testenv.Redis(t)
	keys, err := auth.GenerateKeySet()
	require.NoError(t, err)
	keysFile := filepath.Join(t.TempDir(), "keys.json")
	require.NoError(t, os.WriteFile(keysFile, keys, 0o600))
	env := map[string]string{
		"REDIS_URL":               testenv.RedisURL(),
		"DATABASE_URL":            testenv.SchemaURL(t),
		"SESSIONHUB_REDIS_PREFIX": prefix,
		"SESSIONHUB_KEYS_FILE":    keysFile,
	}
	return []*server{startServer(t, env), startServer(t, env)}, env
}

// bench runs `sessionhub bench args…` against nodes and decodes its --json
// figures.
func bench(t *testing.T, env map[string]string, nodes []*server, args ...string) map[string]any {
	t.Helper()
	var targets, metrics []string
	for _, s := range nodes {
		targets = append(targets, s.url)
		metrics = append(metrics, s.metrics)
	}
	argv := append([]string{"sessionhub", "bench"}, args...)
	argv = append(argv, "--json", "--sources", "3", "--per-user", "4",
		"--targets", strings.Join(targets, ","), "--metrics", strings.Join(metrics, ","))
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), argv, envOf(env), strings.NewReader(""), &stdout, &stderr)
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", &stdout, &stderr)
	var out struct {
		Scenario string         `json:"scenario"`
		Failures []string       `json:"failures"`
		Figures  map[string]any `json:"figures"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &out), stdout.String())
	require.Empty(t, out.Failures)
	require.NotEmpty(t, out.Scenario)
	return out.Figures
}

func num(t *testing.T, figs map[string]any, key string) float64 {
	t.Helper()
	v, ok := figs[key].(float64)
	require.True(t, ok, "figure %q missing or not a number in %v", key, figs)
	return v
}

// TestBenchEndToEnd runs every scenario of `sessionhub bench` on a small N
// against two real nodes and checks the figures are sane (counts exact,
// latencies and costs positive) — never how fast anything was.
func TestBenchEndToEnd(t *testing.T) {
	t.Parallel()
	nodes, env := benchCluster(t)

	t.Run("idle", func(t *testing.T) {
		figs := bench(t, env, nodes, "idle", "24", "--hold", "0s")
		require.Equal(t, 24.0, num(t, figs, "sockets_opened"))
		require.Equal(t, 0.0, num(t, figs, "sockets_failed"))
		require.Equal(t, 24.0, num(t, figs, "server_connections_gauge"))
		require.Positive(t, num(t, figs, "connects_per_s"))
		require.Positive(t, num(t, figs, "handshake_p99_ms"))
		require.GreaterOrEqual(t, num(t, figs, "handshake_p99_ms"), num(t, figs, "handshake_p50_ms"))
		require.Positive(t, num(t, figs, "server_cpu_per_connect_us"))
		require.Positive(t, num(t, figs, "server_rss_after_mib"))
	})
	t.Run("revoke", func(t *testing.T) {
		figs := bench(t, env, nodes, "revoke", "16", "--revokes", "5", "--users", "3", "--burst", "10")
		require.Equal(t, 5.0, num(t, figs, "sessions_revoked_one_at_a_time"))
		require.Equal(t, 3.0, num(t, figs, "users_logged_out_everywhere"))
		require.Equal(t, 0.0, num(t, figs, "background_sockets_closed"))
		require.Positive(t, num(t, figs, "revoke_to_close_session_all_nodes_p99_ms"))
		require.Positive(t, num(t, figs, "global_logout_to_every_socket_closed_p99_ms"))
		require.Positive(t, num(t, figs, "burst_all_sockets_closed_after_ms"))
	})
	t.Run("fanout", func(t *testing.T) {
		figs := bench(t, env, nodes, "fanout", "12", "--rate", "20", "--duration", "1s", "--pushes", "10")
		sent := num(t, figs, "messages_published")
		require.Positive(t, sent)
		require.Equal(t, sent*12, num(t, figs, "deliveries"))
		require.Equal(t, 0.0, num(t, figs, "publish_failures"))
		require.Positive(t, num(t, figs, "publish_to_deliver_p99_ms"))
		require.Positive(t, num(t, figs, "server_cpu_per_million_deliveries_cpu_s"))
		require.Positive(t, num(t, figs, "user_push_deliveries"))
	})
	t.Run("http", func(t *testing.T) {
		figs := bench(t, env, nodes, "http", "--sessions", "10", "--conns", "4", "--duration", "1s")
		require.Positive(t, num(t, figs, "get_session_200_responses_per_s"))
		require.Positive(t, num(t, figs, "post_session_token_200_responses_per_s"))
		require.Positive(t, num(t, figs, "get_session_p99_ms"))
	})
}
