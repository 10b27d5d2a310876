package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/sessionhub/sessionhub/migrations"
)

// migrateCmd runs `sessionhub migrate`: it applies every pending migration
// under the advisory lock (so it is safe while nodes start with --migrate)
// and prints the versions before and after.
func migrateCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("database-url", "", "postgres:// URL ($DATABASE_URL)")
	if err := fs.Parse(args); err != nil {
		return &usageError{err: err, quiet: true}
	}
	if fs.NArg() > 0 {
		return &usageError{err: fmt.Errorf("migrate takes no arguments, got %q", fs.Arg(0))}
	}
	pool, err := openDatabase(ctx, *dsn, getenv)
	if err != nil {
		return err
	}
	defer pool.Close()
	from, to, err := migrations.Apply(pool)
	if err != nil {
		return err
	}
	if from == to {
		fmt.Fprintf(stdout, "schema already at version %d\n", to)
		return nil
	}
	fmt.Fprintf(stdout, "migrated schema from version %d to %d\n", from, to)
	return nil
}

// errNoDatabase is a command that needs Postgres run without DATABASE_URL.
var errNoDatabase = errors.New("not set: this command works on the Postgres database (the in-memory mode keeps its data inside the server process)")
