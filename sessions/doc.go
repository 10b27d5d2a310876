// Package sessions owns the opaque server-side session: its id and secret,
// the sliding idle and absolute expiry, the store (a hot backend — Redis or
// memory — mirrored to a durable backend — Postgres or memory), restore after
// the hot backend loses its data, and revocation events published for the hub.
//
// Start with New, which takes a Config, a Hot backend, a Durable backend and
// a Publisher; NewRedis, NewPostgres and NewMemory build those. Run the
// Store's Run loop for write-behind and retried revocation deliveries.
//
// It may import the standard library, go-redis and pgx, and no other project
// package but internal/groupcommit.
package sessions
