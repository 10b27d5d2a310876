package hub

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/internal/testenv"
)

// nodeEntry is id's entry in n's view of the cluster.
func nodeEntry(t *testing.T, n *node, id string) (NodeInfo, bool) {
	t.Helper()
	list, err := n.h.Nodes(context.Background())
	require.NoError(t, err)
	for _, e := range list {
		if e.ID == id {
			return e, true
		}
	}
	return NodeInfo{}, false
}

// A node lists itself before its first presence beat: it is answering, so
// it is alive.
func TestNodesIncludesSelfBeforeFirstBeat(t *testing.T) {
	t.Parallel()
	auth := newFakeAuth()
	h, err := New(Config{NodeID: "solo"}, Deps{Verifier: auth, Sessions: auth})
	require.NoError(t, err)
	list, err := h.Nodes(context.Background())
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, "solo", list[0].ID)
	require.Equal(t, 0, list[0].Connections)
	require.False(t, list[0].StartedAt.IsZero())
}

// The answering node reports its live connection count, not the one of
// its last beat (conformance D1).
func TestNodesReportsOwnLiveConnections(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	auth := newFakeAuth()
	// No periodic beat during the test: only the live count can be right.
	n := startNode(t, auth, rdb, prefix, func(c *Config) { c.NodeID = "A"; c.beatEvery = time.Hour })
	s1 := dial(t, n, auth.token("u1", "S1"))
	dial(t, n, auth.token("u2", "S2"))
	e, ok := nodeEntry(t, n, "A")
	require.True(t, ok)
	require.Equal(t, 2, e.Connections)
	require.False(t, e.StartedAt.IsZero())

	require.NoError(t, s1.c.CloseNow())
	eventually(t, func() bool { e, _ := nodeEntry(t, n, "A"); return e.Connections == 1 })
}

// Connects and disconnects trigger a (debounced) beat, so other nodes see
// the figure without waiting for the periodic beat.
func TestPresenceBeatFollowsConnections(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	auth := newFakeAuth()
	hourly := func(id string) func(*Config) {
		return func(c *Config) { c.NodeID = id; c.beatEvery = time.Hour }
	}
	a := startNode(t, auth, rdb, prefix, hourly("A"))
	b := startNode(t, auth, rdb, prefix, hourly("B"))
	s := dial(t, a, auth.token("u1", "S1"))
	dial(t, a, auth.token("u1", "S2"))
	eventually(t, func() bool { e, _ := nodeEntry(t, b, "A"); return e.Connections == 2 })
	require.NoError(t, s.c.CloseNow())
	eventually(t, func() bool { e, _ := nodeEntry(t, b, "A"); return e.Connections == 1 })
}
