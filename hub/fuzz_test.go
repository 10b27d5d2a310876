package hub

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzDispatch feeds arbitrary client messages to the decoder and
// dispatcher of one socket and checks that every reply is a well-formed
// ack or error frame (or a message, for a publish the socket hears).
func FuzzDispatch(f *testing.F) {
	for _, s := range []string{
		`{"type":"subscribe","channel":"room:1","id":1}`,
		`{"type":"unsubscribe","channel":"room:1","id":"a"}`,
		`{"type":"publish","channel":"room:1","id":2,"data":{"x":[1,2,3]}}`,
		`{"type":"publish","channel":"user:u1","id":3,"data":null}`,
		`{"type":"subscribe","channel":"user:u1","id":4}`,
		`{"type":"subscribe","channel":"room:*","id":5}`,
		`{"type":"dance","id":6}`,
		`{"type":7,"id":[1]}`,
		`{"type":"subscribe","channel":"` + "\u2028" + `","id":"\u0000"}`,
		`{"TYPE":"subscribe","Channel":"room:1","ID":1}`,
		`[]`, `null`, `"x"`, `{`, `{"id":1e999}`, ``,
	} {
		f.Add([]byte(s))
	}
	auth := newFakeAuth()
	h, err := New(Config{}, Deps{Verifier: auth, Sessions: auth})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		if !utf8.Valid(msg) || len(msg) > maxMessage {
			return // closed by the reader before dispatch
		}
		c := &conn{h: h, id: 1, ident: Identity{UserID: "u1", SessionID: "S1",
			Scopes: []string{"sub:room:*", "pub:room:*"}}, from: "u1"}
		c.writeFn = c.writeLoop
		c.writing = true // hold the writer: replies stay queued for inspection
		c.handle(msg)
		h.reg.remove(c)
		for _, frame := range c.queue {
			payload := framePayload(t, frame)
			var m struct {
				Type  string          `json:"type"`
				ID    json.RawMessage `json:"id"`
				Error string          `json:"error"`
			}
			if err := json.Unmarshal(payload, &m); err != nil {
				t.Fatalf("reply %q is not JSON: %v", payload, err)
			}
			switch m.Type {
			case "ack", "message":
			case "error":
				switch m.Error {
				case codeBadRequest, codeUnknownType, codeForbidden, codeNotSubscribed,
					codeTooManyChannels, codeRateLimited, codeUnavailable:
				default:
					t.Fatalf("unknown error code in %q", payload)
				}
			default:
				t.Fatalf("unexpected reply %q", payload)
			}
		}
	})
}

// framePayload checks a server text frame's header and returns its payload.
func framePayload(t *testing.T, f []byte) []byte {
	t.Helper()
	if len(f) < 2 || f[0] != 0x81 {
		t.Fatalf("bad frame header % x", f[:min(len(f), 4)])
	}
	n, off := int(f[1]), 2
	switch n {
	case 126:
		n, off = int(f[2])<<8|int(f[3]), 4
	case 127:
		n, off = 0, 10
		for _, b := range f[2:10] {
			n = n<<8 | int(b)
		}
	}
	if len(f)-off != n {
		t.Fatalf("frame length %d, payload %d", n, len(f)-off)
	}
	return f[off:]
}
