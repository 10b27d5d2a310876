package auth

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionhub/sessionhub/sessions"
)

// metrics are the auth surface's Prometheus series (names from API.md).
// Every label takes values from a fixed set, so cardinality stays bounded.
type metrics struct {
	sessionsCreated *prometheus.CounterVec // method: password|signup|service|google
	sessionsRevoked *prometheus.CounterVec // reason: sessions.Reason values
	logins          *prometheus.CounterVec // method: password|refresh; result: success|failure|throttled
	tokensIssued    *prometheus.CounterVec // kind: access|refresh
	invalidSessions prometheus.Counter     // unknown, revoked, expired or forged session tokens
	rateLimited     *prometheus.CounterVec // limit: ip|account|token
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sessionsCreated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionhub_sessions_created_total",
			Help: "Sessions created, by how the user authenticated.",
		}, []string{"method"}),
		sessionsRevoked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionhub_sessions_revoked_total",
			Help: "Sessions revoked through the auth surface, by reason.",
		}, []string{"reason"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionhub_auth_logins_total",
			Help: "Login attempts, by method and result.",
		}, []string{"method", "result"}),
		tokensIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionhub_tokens_issued_total",
			Help: "Tokens issued: access (5-minute JWT) and refresh.",
		}, []string{"kind"}),
		invalidSessions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionhub_auth_invalid_session_tokens_total",
			Help: "Requests presenting a session token that is unknown, revoked, expired or forged.",
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionhub_auth_rate_limited_total",
			Help: "Requests refused with 429, by limit.",
		}, []string{"limit"}),
	}
	m.initSeries()
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.sessionsCreated, m.sessionsRevoked, m.logins,
		m.tokensIssued, m.invalidSessions, m.rateLimited} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// initSeries creates every series of the API.md metrics at zero, so a
// fresh node's /metrics already lists each name (a labelled counter is
// otherwise absent until its first increment, and a dashboard or alert on
// it sees no data rather than 0).
func (m *metrics) initSeries() {
	for _, method := range []string{"signup", "password", googleProvider, "service"} {
		m.sessionsCreated.WithLabelValues(method)
	}
	for _, r := range []sessions.Reason{sessions.ReasonLogout, sessions.ReasonLogoutAll, sessions.ReasonRevoked,
		sessions.ReasonPasswordChange, sessions.ReasonAdmin, sessions.ReasonRefreshReuse, sessions.ReasonExpired} {
		m.sessionsRevoked.WithLabelValues(string(r))
	}
	for _, method := range []string{"password", googleProvider} {
		for _, result := range []string{"success", "failure", "throttled"} {
			m.logins.WithLabelValues(method, result)
		}
	}
	m.logins.WithLabelValues("refresh", "success")
	m.logins.WithLabelValues("refresh", "failure")
	m.tokensIssued.WithLabelValues("access")
	m.tokensIssued.WithLabelValues("refresh")
}
