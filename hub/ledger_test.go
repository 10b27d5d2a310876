package hub

import (
	"context"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/internal/testenv"
)

// TestLedgerAddAndRemoveInOneRound: a socket whose add and remove leave in
// the same round (its handshake gave up waiting, then it closed) leaves no
// member behind, while the round's other add and remove take effect.
func TestLedgerAddAndRemoveInOneRound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	b := newRedisBroker(rdb, prefix, slog.New(slog.DiscardHandler), prometheus.NewCounter(prometheus.CounterOpts{Name: "x"}))
	l := b.ledger
	key := b.hubKey("u:u1")
	require.NoError(t, rdb.ZAdd(ctx, key, redis.Z{Score: 1, Member: "n1|old"}).Err())

	gaveUp := &ledgerAdd{user: "u1", member: "n1|gave-up", limit: 32, done: make(chan struct{})}
	kept := &ledgerAdd{user: "u1", member: "n1|kept", limit: 32, done: make(chan struct{})}
	l.removes = []ledgerRemove{{"u1", "n1|gave-up"}, {"u1", "n1|old"}}
	l.round(ctx, []*ledgerAdd{gaveUp, nil, kept})
	<-gaveUp.done
	<-kept.done
	require.NoError(t, kept.err)

	members, err := rdb.ZRange(ctx, key, 0, -1).Result()
	require.NoError(t, err)
	require.Equal(t, []string{"n1|kept"}, members)
	require.Empty(t, l.removes)
}
