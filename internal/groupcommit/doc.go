// Package groupcommit is the group commit behind sessionhub's batchers:
// requests handed to a Group while one round trip is in flight go together
// in the next one (a Redis pipeline, one Postgres statement). An idle Group
// holds no timer and no goroutine. What a round sends, how a request is
// answered and how its caller waits stay with the caller.
//
// It imports only the standard library.
package groupcommit
