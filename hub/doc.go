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
// The package imports no other sessionhub package but internal/groupcommit:
// it declares what it consumes (Verifier, Sessions) and cmd adapts auth and
// sessions to them.
//
// Cost model, per idle socket: one goroutine (the reader, started after the
// HTTP handler has returned, so net/http's per-connection buffers are
// garbage), a 256-byte read buffer and a 256-byte control-frame write
// buffer. Pings come from one heartbeat loop per hub.
//
// Per connect: the JWT check, then Redis work shared with concurrent
// handshakes (group commit): the liveness read (liveness), the socket
// ledger (ledger) and the user-channel SUBSCRIBE (psLink) each cost one
// round trip for every handshake that queued while the previous one was in
// flight. The 101 response is held back and leaves in the same write as
// the welcome frame. A close queues its ledger removal and waits for no
// round trip.
//
// Writes: a fan-out encodes a message once and appends the shared frame to
// each socket's queue; a few flusher goroutines (one per CPU) write each
// dirty socket's whole queue with one non-blocking write, so frames that
// arrive meanwhile coalesce. Only a socket whose kernel buffer is full gets
// a writer goroutine of its own, which may block (with a deadline).
// Revocation closes write the close frame inline from the pub/sub receive
// goroutine when nothing else is queued, without waiting for the peer's
// reply (the reader sees it; closeGrace bounds it).
package hub
