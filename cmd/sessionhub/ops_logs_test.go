package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// accessRecord is one JSON access-log line of httpMetrics.observe.
type accessRecord struct {
	Msg        string   `json:"msg"`
	Method     string   `json:"method"`
	Route      string   `json:"route"`
	Status     int      `json:"status"`
	DurationMS *float64 `json:"duration_ms"`
	RequestID  string   `json:"request_id"`
	SessionID  string   `json:"session_id"`
}

// accessLines parses the JSON log for its access lines.
func accessLines(t *testing.T, logs string) []accessRecord {
	t.Helper()
	var out []accessRecord
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec accessRecord
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "every production log line is JSON: %s", line)
		if rec.Msg == "http request" {
			out = append(out, rec)
		}
	}
	return out
}

// TestLogsHoldNoSecrets captures the production (JSON) log of a whole
// login → token → socket → publish → logout run, plus a mobile login and a
// refresh, and finds in it none of the secrets the server handed out or
// was given; and it finds exactly one access line per request, naming the
// route pattern, status, duration, request id and the presented session's
// public id.
func TestLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	env := opsEnv(t)
	env["SESSIONHUB_LOG_LEVEL"] = "debug" // the most a node will ever log
	worker := newWorker(t, env)
	s := startServer(t, env)
	j := runJourney(t, s, worker, true)

	// Make sure the /ws line has landed (its handler returns after the
	// upgrade, not at close), then stop the node so that the shutdown lines
	// are in the log too.
	s.waitLogLine(`"route":"/ws"`)
	require.NoError(t, s.shutdown())
	logs := s.logs.String()

	for what, secret := range j.secrets {
		require.NotContains(t, logs, secret, "the log holds the %s", what)
	}
	require.NotContains(t, logs, j.randPath, "the raw path of an unmatched route is not logged")

	// One access line per request of the journey, as expected, in any
	// order. Probes (/healthz from startServer) log at debug and count
	// apart.
	var got []accessLine
	ids := map[string]bool{}
	for _, rec := range accessLines(t, logs) {
		require.NotNil(t, rec.DurationMS, "duration_ms in %+v", rec)
		require.NotEmpty(t, rec.RequestID, "%+v", rec)
		require.False(t, ids[rec.RequestID], "request id %s on two lines", rec.RequestID)
		ids[rec.RequestID] = true
		require.NotEmpty(t, rec.Method)
		require.True(t, strings.HasPrefix(rec.Route, "/") || rec.Route == "unmatched", rec.Route)
		if rec.Route == "/healthz" || rec.Route == "/readyz" {
			continue
		}
		got = append(got, accessLine{rec.Route, rec.Status, rec.SessionID})
	}
	sortLines := func(l []accessLine) []string {
		out := make([]string, 0, len(l))
		for _, a := range l {
			out = append(out, fmt.Sprintf("%s %d session_id=%q", a.route, a.status, a.sessionID))
		}
		slices.Sort(out)
		return out
	}
	require.Equal(t, sortLines(j.expected), sortLines(got))
}
