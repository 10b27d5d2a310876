package main

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
)

// openDatabase opens the Postgres of a command-line tool: the flag's value,
// else DATABASE_URL.
func openDatabase(ctx context.Context, flagValue string, getenv func(string) string) (*pgxpool.Pool, error) {
	dsn, name := flagValue, "--database-url (DATABASE_URL)"
	if dsn == "" {
		dsn, name = getenv("DATABASE_URL"), "DATABASE_URL"
	}
	if dsn == "" {
		return nil, &ConfigError{Name: "DATABASE_URL", Err: errNoDatabase}
	}
	if err := checkDatabaseURL(dsn); err != nil {
		return nil, &ConfigError{Name: name, Err: err}
	}
	return openPostgres(ctx, dsn)
}
