package main

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPostgresPoolSize: the pool's default size leaves the background
// writers their connections and requests 2 per core (pgxpool's own
// default, max(4, NumCPU), is 4 on a 2-core node); pool_max_conns in
// DATABASE_URL still sets it.
func TestPostgresPoolSize(t *testing.T) {
	t.Parallel()
	cfg, err := pgxConfig("postgres://root@127.0.0.1:5432/test?sslmode=disable")
	require.NoError(t, err)
	require.EqualValues(t, 8+2*runtime.GOMAXPROCS(0), cfg.MaxConns)
	require.EqualValues(t, 10, poolMaxConns(1))
	require.EqualValues(t, 12, poolMaxConns(2))

	cfg, err = pgxConfig("postgres://root@127.0.0.1:5432/test?sslmode=disable&pool_max_conns=3")
	require.NoError(t, err)
	require.EqualValues(t, 3, cfg.MaxConns)
	cfg, err = pgxConfig("host=127.0.0.1 user=root dbname=test pool_max_conns=40")
	require.NoError(t, err)
	require.EqualValues(t, 40, cfg.MaxConns)
}
