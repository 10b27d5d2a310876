package hub

import "github.com/coder/websocket"

// Close codes of API.md that are not in RFC 6455.
const (
	StatusSessionRevoked websocket.StatusCode = 4001
	StatusLoggedOut      websocket.StatusCode = 4002
	StatusSessionExpired websocket.StatusCode = 4003
	StatusSlowConsumer   websocket.StatusCode = 4008
	StatusTooMany        websocket.StatusCode = 4009
)

// Disconnect says why a socket ended. Each value has the close code sent to
// the client (0: none, the peer is gone), its reason text, and the bounded
// label counted in sessionhub_hub_disconnects_total.
type Disconnect uint8

const (
	DisconnectClient       Disconnect = iota // the peer closed or vanished
	DisconnectGoingAway                      // 1001: node draining
	DisconnectRevoked                        // 4001
	DisconnectLoggedOut                      // 4002
	DisconnectExpired                        // 4003
	DisconnectSlowConsumer                   // 4008
	DisconnectTooMany                        // 4009
	DisconnectTooBig                         // 1009
	DisconnectBinary                         // 1003
	DisconnectBadUTF8                        // 1007
	DisconnectFlood                          // 1008
	DisconnectHeartbeat                      // no pong: closed without a frame
	DisconnectError                          // protocol or I/O error
	numDisconnects
)

// Code is the close code sent to the client; 0 means none is sent.
func (d Disconnect) Code() websocket.StatusCode {
	switch d {
	case DisconnectGoingAway:
		return websocket.StatusGoingAway
	case DisconnectRevoked:
		return StatusSessionRevoked
	case DisconnectLoggedOut:
		return StatusLoggedOut
	case DisconnectExpired:
		return StatusSessionExpired
	case DisconnectSlowConsumer:
		return StatusSlowConsumer
	case DisconnectTooMany:
		return StatusTooMany
	case DisconnectTooBig:
		return websocket.StatusMessageTooBig
	case DisconnectBinary:
		return websocket.StatusUnsupportedData
	case DisconnectBadUTF8:
		return websocket.StatusInvalidFramePayloadData
	case DisconnectFlood:
		return websocket.StatusPolicyViolation
	}
	return 0
}

// Reason is the close frame's reason text (API.md's table).
func (d Disconnect) Reason() string {
	switch d {
	case DisconnectGoingAway:
		return "going away"
	case DisconnectRevoked:
		return "session revoked"
	case DisconnectLoggedOut:
		return "logged out everywhere"
	case DisconnectExpired:
		return "session expired"
	case DisconnectSlowConsumer:
		return "slow consumer"
	case DisconnectTooMany:
		return "too many connections"
	case DisconnectTooBig:
		return "message too big"
	case DisconnectBinary:
		return "binary messages are not supported"
	case DisconnectBadUTF8:
		return "invalid utf-8"
	case DisconnectFlood:
		return "rate limit exceeded"
	}
	return ""
}

// String is the metric label.
func (d Disconnect) String() string {
	switch d {
	case DisconnectClient:
		return "client"
	case DisconnectGoingAway:
		return "going_away"
	case DisconnectRevoked:
		return "revoked"
	case DisconnectLoggedOut:
		return "logged_out"
	case DisconnectExpired:
		return "expired"
	case DisconnectSlowConsumer:
		return "slow_consumer"
	case DisconnectTooMany:
		return "too_many_connections"
	case DisconnectTooBig:
		return "too_big"
	case DisconnectBinary:
		return "binary"
	case DisconnectBadUTF8:
		return "bad_utf8"
	case DisconnectFlood:
		return "flood"
	case DisconnectHeartbeat:
		return "heartbeat_timeout"
	}
	return "error"
}

// closeFrame encodes the close frame for d (unmasked, server to client).
func (d Disconnect) closeFrame() []byte {
	code, reason := d.Code(), d.Reason()
	p := make([]byte, 0, 4+len(reason))
	p = append(p, 0x88, byte(2+len(reason)), byte(code>>8), byte(code))
	return append(p, reason...)
}
