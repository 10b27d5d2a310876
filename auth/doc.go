// Package auth is sessionhub's auth surface: users and identities,
// argon2id passwords, the session cookie, CSRF and origin checks, the
// session middleware, JWT minting and the JWKS, mobile refresh tokens,
// rate limits, the audit log, and the HTTP handlers of API.md's auth,
// session and admin routes.
//
// Start with New (a Config and the Deps: the sessions.Store, Postgres or
// nil, Redis or nil, Tokens, a Refresher, a Cluster), then mount
// (*Server).Routes on a chi router. The command line calls CreateUser,
// GrantScopes, CreateServiceSession, RevokeSession and LogoutAll.
//
// It may import the standard library, sessions, internal/groupcommit, chi,
// pgx, go-redis, prometheus and x/crypto, and no other project package.
package auth
