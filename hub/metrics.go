package hub

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Connect results, the bounded label set of sessionhub_hub_connects_total.
const (
	resultOK           = "ok"
	resultNoToken      = "no_token"
	resultQueryToken   = "query_token"
	resultInvalidToken = "invalid_token"
	resultDeadSession  = "dead_session"
	resultOrigin       = "origin"
	resultDraining     = "draining"
	resultUnavailable  = "unavailable"
	resultBadRequest   = "bad_request"
)

type metrics struct {
	connections prometheus.Gauge
	connects    *prometheus.CounterVec
	connectsOK  prometheus.Counter // the hot label, resolved once
	disconnects [numDisconnects]prometheus.Counter
	revokeClose prometheus.Histogram
	broadcast   prometheus.Histogram
	msgIn       prometheus.Counter
	msgOut      prometheus.Counter
	reconnects  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sessionhub_hub_connections", Help: "Live WebSocket connections on this node.",
		}),
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionhub_hub_connects_total", Help: "WebSocket handshakes by result.",
		}, []string{"result"}),
		revokeClose: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sessionhub_hub_revoke_close_seconds",
			Help: "From a revocation's issued_at to its close frame leaving this node.",
			Buckets: []float64{.0005, .001, .002, .003, .005, .0075, .01, .025, .05, .1, .25,
				.5, 1, 2.5, 5, 10, 30},
		}),
		broadcast: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sessionhub_hub_broadcast_seconds",
			Help:    "From a channel message's arrival at this node to the end of its pass over the local subscribers (the last one written or queued).",
			Buckets: []float64{.001, .002, .005, .01, .025, .05, .075, .1, .15, .2, .3, .5, 1, 2.5, 5, 10},
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionhub_redis_pubsub_reconnects_total", Help: "Redis pub/sub links re-established.",
		}),
	}
	disc := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sessionhub_hub_disconnects_total", Help: "Closed WebSocket connections by reason.",
	}, []string{"reason"})
	msgs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sessionhub_hub_messages_total",
		Help: "Socket messages: in = from clients and /api/publish, out = deliveries to sockets.",
	}, []string{"direction"})
	for d := range numDisconnects {
		m.disconnects[d] = disc.WithLabelValues(d.String())
	}
	m.msgIn = msgs.WithLabelValues("in")
	m.connectsOK = m.connects.WithLabelValues(resultOK)
	m.msgOut = msgs.WithLabelValues("out")
	for _, r := range []string{resultOK, resultNoToken, resultQueryToken, resultInvalidToken,
		resultDeadSession, resultOrigin, resultDraining, resultUnavailable, resultBadRequest} {
		m.connects.WithLabelValues(r)
	}
	for _, c := range []prometheus.Collector{m.connections, m.connects, disc, m.revokeClose, m.broadcast, msgs, m.reconnects} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("%w: metrics already registered (one hub per registerer)", ErrConfig)
			}
			return nil, fmt.Errorf("%w: register metrics: %v", ErrConfig, err)
		}
	}
	return m, nil
}
