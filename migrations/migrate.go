package migrations

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

//go:embed *.sql
var files embed.FS

// ErrOutOfDate means the database schema is older than this binary's.
var ErrOutOfDate = errors.New("migrations: schema is out of date")

// Latest returns the highest migration number embedded in the binary.
func Latest() uint {
	entries, _ := fs.ReadDir(files, ".")
	var v uint
	for _, e := range entries {
		n, _, _ := strings.Cut(e.Name(), "_")
		if x, err := strconv.ParseUint(n, 10, 32); err == nil && uint(x) > v {
			v = uint(x)
		}
	}
	return v
}

func open(pool *pgxpool.Pool) (*migrate.Migrate, error) {
	src, err := iofs.New(files, ".")
	if err != nil {
		return nil, fmt.Errorf("migrations: source: %w", err)
	}
	// The *sql.DB borrows the pool's connections (and so its search_path);
	// closing it leaves the pool open.
	drv, err := migratepgx.WithInstance(stdlib.OpenDBFromPool(pool), &migratepgx.Config{})
	if err != nil {
		return nil, fmt.Errorf("migrations: connect: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return m, nil
}

// Apply runs every pending migration under golang-migrate's Postgres
// advisory lock, so concurrent nodes started with --migrate apply each file
// once. It returns the schema version before and after.
func Apply(pool *pgxpool.Pool) (from, to uint, err error) {
	m, err := open(pool)
	if err != nil {
		return 0, 0, err
	}
	defer m.Close()
	from, _, err = version(m)
	if err != nil {
		return 0, 0, err
	}
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return from, 0, fmt.Errorf("migrations: apply: %w", err)
	}
	to, _, err = version(m)
	return from, to, err
}

// Check returns ErrOutOfDate (wrapped with the versions) when the schema is
// behind this binary or left dirty by a failed migration.
func Check(pool *pgxpool.Pool) error {
	m, err := open(pool)
	if err != nil {
		return err
	}
	defer m.Close()
	v, dirty, err := version(m)
	if err != nil {
		return err
	}
	if dirty {
		return fmt.Errorf("%w: migration %d failed half-way; repair it by hand", ErrOutOfDate, v)
	}
	if v < Latest() {
		return fmt.Errorf("%w: database at version %d, binary needs %d", ErrOutOfDate, v, Latest())
	}
	return nil
}

func version(m *migrate.Migrate) (uint, bool, error) {
	v, dirty, err := m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("migrations: version: %w", err)
	}
	return v, dirty, nil
}
