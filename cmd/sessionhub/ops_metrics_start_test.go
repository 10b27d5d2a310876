package main

import (
	"slices"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// apiMetricShapes are API.md's Metrics section: each name, its type and
// its exact label names.
var apiMetricShapes = []struct {
	name   string
	typ    dto.MetricType
	labels []string
}{
	{"sessionhub_hub_connections", dto.MetricType_GAUGE, nil},
	{"sessionhub_hub_connects_total", dto.MetricType_COUNTER, []string{"result"}},
	{"sessionhub_hub_disconnects_total", dto.MetricType_COUNTER, []string{"reason"}},
	{"sessionhub_hub_revoke_close_seconds", dto.MetricType_HISTOGRAM, nil},
	{"sessionhub_hub_messages_total", dto.MetricType_COUNTER, []string{"direction"}},
	{"sessionhub_sessions_created_total", dto.MetricType_COUNTER, []string{"method"}},
	{"sessionhub_sessions_revoked_total", dto.MetricType_COUNTER, []string{"reason"}},
	{"sessionhub_auth_logins_total", dto.MetricType_COUNTER, []string{"method", "result"}},
	{"sessionhub_tokens_issued_total", dto.MetricType_COUNTER, []string{"kind"}},
	{"sessionhub_http_request_duration_seconds", dto.MetricType_HISTOGRAM, []string{"code", "method", "route"}},
	{"sessionhub_redis_pubsub_reconnects_total", dto.MetricType_COUNTER, nil},
}

// TestMetricsListedFromStart scrapes a node that has served nothing but
// /healthz: every series API.md names is already there, with its type and
// label names, so a dashboard or an alert on a fresh node finds it (a
// labelled counter used to appear only at its first increment).
func TestMetricsListedFromStart(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	fams := scrape(t, s)
	for _, want := range apiMetricShapes {
		mf := fams[want.name]
		require.NotNil(t, mf, "API.md promises %s on a fresh node", want.name)
		require.Equal(t, want.typ, mf.GetType(), want.name)
		require.NotEmpty(t, mf.GetMetric(), want.name)
		for _, m := range mf.GetMetric() {
			var names []string
			for _, lp := range m.GetLabel() {
				names = append(names, lp.GetName())
			}
			slices.Sort(names)
			require.Equal(t, want.labels, names, want.name)
		}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_open_fds"} {
		require.Contains(t, fams, name, "the Go and process collectors")
	}
}
