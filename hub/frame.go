package hub

import (
	"encoding/binary"
	"unicode/utf8"
)

// pingFrame is an empty ping; the heartbeat shares it across sockets.
func pingFrame() []byte { return []byte{0x89, 0x00} }

// textFrame wraps payload in one unmasked, final text frame. A broadcast
// builds it once and every subscriber's queue shares the same bytes.
func textFrame(payload []byte) []byte {
	n := len(payload)
	var f []byte
	switch {
	case n < 126:
		f = make([]byte, 2, 2+n)
		f[0], f[1] = 0x81, byte(n)
	case n <= 0xffff:
		f = make([]byte, 4, 4+n)
		f[0], f[1] = 0x81, 126
		binary.BigEndian.PutUint16(f[2:], uint16(n))
	default:
		f = make([]byte, 10, 10+n)
		f[0], f[1] = 0x81, 127
		binary.BigEndian.PutUint64(f[2:], uint64(n))
	}
	return append(f, payload...)
}

// frameInPlace turns b, a payload after 4 reserved bytes, into one text
// frame without copying the payload (payloads under 64 KiB).
func frameInPlace(b []byte) []byte {
	n := len(b) - 4
	if n < 126 {
		b[2], b[3] = 0x81, byte(n)
		return b[2:]
	}
	b[0], b[1] = 0x81, 126
	binary.BigEndian.PutUint16(b[2:], uint16(n))
	return b
}

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// messagePayload encodes {"type":"message","channel","data","from"} once per
// publish; data is already-valid JSON.
func messagePayload(channel string, data []byte, from string) []byte {
	b := make([]byte, 0, 48+len(channel)+len(data)+len(from))
	b = append(b, `{"type":"message","channel":`...)
	b = appendString(b, channel)
	b = append(b, `,"data":`...)
	b = append(b, data...)
	b = append(b, `,"from":`...)
	b = appendString(b, from)
	return append(b, '}')
}
