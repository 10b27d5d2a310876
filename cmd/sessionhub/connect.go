package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// redisTarget is a parsed REDIS_URL: one server, or a cluster.
type redisTarget struct {
	single  *redis.Options
	cluster *redis.ClusterOptions
}

// redisOptions parses REDIS_URL:
//
//	redis://[user:pass@]host:port[/db]          one server (rediss:// for TLS)
//	redis://a:6379,redis://b:6379  or  a:6379,b:6379   Redis Cluster seeds
//	redis+cluster://[user:pass@]a:6379,b:6379[?opts]  Redis Cluster
//
// Errors never repeat the URL: it may hold a password.
func redisOptions(v string) (*redisTarget, error) {
	if rest, ok := strings.CutPrefix(v, "redis+cluster://"); ok {
		return clusterURL("redis://" + rest)
	}
	if rest, ok := strings.CutPrefix(v, "rediss+cluster://"); ok {
		return clusterURL("rediss://" + rest)
	}
	items := splitList(v, ",")
	if len(items) == 1 {
		o, err := redis.ParseURL(items[0])
		if err != nil {
			return nil, errors.New("not a redis:// URL (or a comma-separated list, or redis+cluster://)")
		}
		return &redisTarget{single: o}, nil
	}
	c := &redis.ClusterOptions{}
	for i, item := range items {
		if !strings.Contains(item, "://") {
			item = "redis://" + item
		}
		o, err := redis.ParseURL(item)
		if err != nil || o.Network != "tcp" {
			return nil, fmt.Errorf("item %d of the list is not a redis:// URL or host:port", i+1)
		}
		if o.DB != 0 {
			return nil, errors.New("a Redis Cluster has only database 0")
		}
		if i == 0 {
			c.Username, c.Password, c.TLSConfig = o.Username, o.Password, o.TLSConfig
		}
		c.Addrs = append(c.Addrs, o.Addr)
	}
	return &redisTarget{cluster: c}, nil
}

// clusterURL turns "redis://u:p@a:1,b:2?x=y" into go-redis's form, where
// extra seeds are addr= parameters.
func clusterURL(v string) (*redisTarget, error) {
	bad := errors.New("not a redis+cluster://host:port[,host:port…] URL")
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, bad
	}
	hosts := splitList(u.Host, ",")
	u.Host = hosts[0]
	q := u.Query()
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	u.RawQuery = q.Encode()
	u.Path = ""
	o, err := redis.ParseClusterURL(u.String())
	if err != nil {
		return nil, bad
	}
	return &redisTarget{cluster: o}, nil
}

// client makes the go-redis client for the target.
func (t *redisTarget) client() redis.UniversalClient {
	if t.cluster != nil {
		return redis.NewClusterClient(t.cluster)
	}
	return redis.NewClient(t.single)
}

// pgxConfig parses DATABASE_URL. The pool holds poolMaxConns connections
// unless the URL sets pool_max_conns (pgxpool reads its pool_* parameters
// from the URL, as it does pool_min_conns and pool_max_conn_lifetime).
func pgxConfig(v string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(v)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(v, "pool_max_conns") {
		cfg.MaxConns = poolMaxConns(runtime.GOMAXPROCS(0))
	}
	return cfg, nil
}

// poolMaxConns is the default size of the Postgres pool: 8 connections for
// the work that may hold one whatever the traffic (the audit writer's
// group commit, the revocation group commit, the write-behind and expiry
// loop, a batched audit of a logout-all or an expiry pass, the readiness
// probe, an admin report; two to spare) plus 2 per core for requests (the GOMAXPROCS logins the argon2 slots let through at once,
// each a user read then a session insert, and as many other requests'
// reads). pgxpool's own default, max(4, NumCPU), is 4 on a 2-core node:
// the background writers alone could hold all of it while requests wait
// out their 3 s store timeout and answer 503.
func poolMaxConns(procs int) int32 { return int32(8 + 2*procs) }

// connectTimeout bounds the start-up connection checks, so that a server
// pointed at an unreachable database says so instead of hanging.
const connectTimeout = 10 * time.Second

// openPostgres opens a pool and checks that the database answers.
func openPostgres(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxConfig(dsn)
	if err != nil {
		return nil, &ConfigError{Name: "DATABASE_URL", Err: errors.New("not a valid Postgres connection URL")}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres at DATABASE_URL unreachable: %w", err)
	}
	return pool, nil
}

// newRedis makes the Redis client for REDIS_URL. It does not connect: an
// unreachable Redis is not fatal (the node serves degraded from Postgres).
func newRedis(v string) (redis.UniversalClient, error) {
	t, err := redisOptions(v)
	if err != nil {
		return nil, &ConfigError{Name: "REDIS_URL", Err: err}
	}
	return t.client(), nil
}
