// Package hub is sessionhub's realtime half: it accepts WebSockets
// authenticated by a short-lived JWT (or the session cookie of a browser on
// an allowed origin), keeps a sharded registry of live sockets by session,
// user and channel, fans messages out over a Broker (Redis pub/sub across
// nodes, or in memory for a single node), and closes every socket of a
// session or user, on every node, the moment a revocation is published.
//
// Call New with a Config and Deps, mount ServeWS on GET /ws and
// HandlePublish on POST /api/publish, run Run in a goroutine, and call
// Shutdown (the drain) before the process exits. Ready reports false from the
// first moment of a drain, for /readyz.
//
// The package imports no other sessionhub package: it declares what it
// consumes (Verifier, Sessions) and cmd adapts auth and sessions to them.
//
// Cost model, per idle socket: one goroutine (the reader, started after the
// HTTP handler has returned, so net/http's per-connection buffers are
// garbage), a 256-byte read buffer and a 256-byte control-frame write
// buffer. Writes are done by a goroutine that exists only while the socket
// has queued frames; pings come from one heartbeat loop per hub.
package hub
