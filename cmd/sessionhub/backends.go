package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/sessionhub/sessionhub/migrations"
	"github.com/sessionhub/sessionhub/sessions"
)

// backends are the storage the server runs on: Redis + Postgres, or the
// in-memory implementations of the same interfaces.
type backends struct {
	pool  *pgxpool.Pool         // nil in memory mode
	rdb   redis.UniversalClient // nil in memory mode
	mem   *sessions.Memory      // nil unless memory mode
	store *sessions.Store
}

// close releases the connections. Call it after everything using them has
// stopped.
func (b *backends) close() {
	if b.rdb != nil {
		_ = b.rdb.Close()
	}
	if b.pool != nil {
		b.pool.Close()
	}
}

// openBackends connects to Redis and Postgres (or makes the in-memory
// backends), applies migrations when asked, refuses an out-of-date schema,
// and builds the session store.
func openBackends(ctx context.Context, cfg *Config, log *slog.Logger) (*backends, error) {
	scfg := sessions.Config{IdleTTL: cfg.SessionTTL, MaxAge: cfg.SessionMaxAge, Logger: log}
	if cfg.Memory() {
		mem := sessions.NewMemory(time.Now)
		store, err := sessions.New(scfg, mem, mem, mem)
		if err != nil {
			return nil, err
		}
		return &backends{mem: mem, store: store}, nil
	}

	pool, err := openPostgres(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	b := &backends{pool: pool}
	if err := prepareSchema(pool, cfg.Migrate, log); err != nil {
		b.close()
		return nil, err
	}
	if b.rdb, err = newRedis(cfg.RedisURL); err != nil {
		b.close()
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := b.rdb.Ping(pctx).Err(); err != nil {
		// Not fatal: sessions validate from Postgres until Redis is back.
		log.Warn("redis unreachable at start-up; serving degraded from postgres", "err", err)
	}
	hot := sessions.NewRedis(b.rdb, cfg.RedisPrefix)
	b.store, err = sessions.New(scfg, hot, sessions.NewPostgres(pool), hot)
	if err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

// errSchema is an out-of-date schema; the message names the fix.
var errSchema = errors.New("run `sessionhub migrate` (or start with `sessionhub serve --migrate`) to update it")

// prepareSchema applies pending migrations when migrate is set, then
// refuses to go on with a schema older than this binary.
func prepareSchema(pool *pgxpool.Pool, migrate bool, log *slog.Logger) error {
	if migrate {
		from, to, err := migrations.Apply(pool)
		if err != nil {
			return err
		}
		log.Info("database migrated", "from", from, "to", to)
	}
	if err := migrations.Check(pool); err != nil {
		if errors.Is(err, migrations.ErrOutOfDate) {
			return fmt.Errorf("%w; %w", err, errSchema)
		}
		return err
	}
	return nil
}
