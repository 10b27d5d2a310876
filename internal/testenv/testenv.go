package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/sessionhub/sessionhub/migrations"
	"github.com/sessionhub/sessionhub/sessions"
)

// DatabaseURL is the Postgres the tests use.
func DatabaseURL() string {
	if u := os.Getenv("SESSIONHUB_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://root@127.0.0.1:5432/test?sslmode=disable"
}

// RedisURL is the Redis the tests use.
func RedisURL() string {
	if u := os.Getenv("SESSIONHUB_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// unreachable stops the test: a skip under -short, a failure otherwise, so
// CI never passes by skipping.
func unreachable(t testing.TB, what string, err error) {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s unreachable under -short: %v", what, err)
	}
	t.Fatalf("%s unreachable (run the tests through scripts/test, which starts it): %v", what, err)
}

// SchemaURL creates a fresh schema, applies every migration to it, drops it
// when the test ends and returns a DATABASE_URL whose search_path selects
// it — for tests that start a whole server through its configuration.
func SchemaURL(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	admin, err := pgxpool.New(ctx, DatabaseURL())
	if err == nil {
		err = admin.Ping(ctx)
	}
	if err != nil {
		unreachable(t, "postgres", err)
	}
	schema := "t_" + strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(sessions.RandomString(9)))
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	})
	u, err := url.Parse(DatabaseURL())
	if err != nil {
		t.Fatalf("bad SESSIONHUB_TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	pool := connect(t, u.String())
	defer pool.Close()
	if _, _, err := migrations.Apply(pool); err != nil {
		t.Fatalf("migrate schema %s: %v", schema, err)
	}
	return u.String()
}

// Postgres returns a pool on a fresh, migrated schema of its own.
func Postgres(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool := connect(t, SchemaURL(t))
	t.Cleanup(pool.Close)
	return pool
}

func connect(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err == nil {
		err = pool.Ping(context.Background())
	}
	if err != nil {
		unreachable(t, "postgres", err)
	}
	return pool
}

// Redis returns a client on the shared test Redis and a prefix no other test
// uses; every key under the prefix is deleted when the test ends. Never
// FLUSHALL: the Redis is shared.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	opt, err := redis.ParseURL(RedisURL())
	if err != nil {
		t.Fatalf("bad SESSIONHUB_TEST_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		rdb.Close()
		unreachable(t, "redis", err)
	}
	prefix := fmt.Sprintf("t:%s:", sessions.RandomString(6))
	t.Cleanup(func() {
		DeletePrefix(rdb, prefix)
		rdb.Close()
	})
	return rdb, prefix
}

// DeletePrefix removes every key under prefix.
func DeletePrefix(rdb redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 1000 {
			rdb.Unlink(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		rdb.Unlink(ctx, batch...)
	}
}
