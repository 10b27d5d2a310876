// Package migrations holds the numbered, forward-only SQL files of the
// schema, embedded in the binary, and applies them under a Postgres advisory
// lock (golang-migrate does the locking and bookkeeping).
//
// It may import the standard library and its migration driver only.
package migrations
