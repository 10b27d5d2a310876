package auth

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// GET /session is the hottest authenticated route: its body is encoded by
// hand, byte for byte what encoding/json writes for accountResponse (a
// test holds the two equal), without reflection.

var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeAccount is writeJSON for an accountResponse.
func writeAccount(w http.ResponseWriter, status int, v *accountResponse) {
	bp := jsonBufs.Get().(*[]byte)
	b := v.appendJSON((*bp)[:0])
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	*bp = b
	jsonBufs.Put(bp)
}

// appendJSON appends v as json.NewEncoder(w).Encode(v) writes it,
// trailing newline included.
func (v *accountResponse) appendJSON(b []byte) []byte {
	u, s := &v.User, &v.Session
	b = append(b, `{"user":{"id":`...)
	b = appendJSONString(b, u.ID)
	b = append(b, `,"email":`...)
	b = appendJSONString(b, u.Email)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, u.Name)
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, u.CreatedAt)
	b = append(b, `},"session":{"id":`...)
	b = appendJSONString(b, s.ID)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, s.Kind)
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, s.CreatedAt)
	b = append(b, `,"last_seen_at":`...)
	b = appendJSONTime(b, s.LastSeenAt)
	b = append(b, `,"expires_at":`...)
	b = appendJSONTime(b, s.ExpiresAt)
	b = append(b, `,"ip":`...)
	b = appendJSONString(b, s.IP)
	b = append(b, `,"user_agent":`...)
	b = appendJSONString(b, s.UserAgent)
	b = append(b, `,"device":`...)
	b = appendJSONString(b, s.Device)
	b = append(b, `,"current":`...)
	if s.Current {
		b = append(b, "true"...)
	} else {
		b = append(b, "false"...)
	}
	b = append(b, `},"csrf_token":`...)
	b = appendJSONString(b, v.CSRFToken)
	return append(b, "}\n"...)
}

// appendJSONString appends s quoted as encoding/json does (HTML-safe):
// plain printable ASCII directly, anything else through json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONTime appends t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds); a year MarshalJSON refuses goes through json.Marshal.
func appendJSONTime(b []byte, t time.Time) []byte {
	if y := t.Year(); y < 0 || y > 9999 {
		q, _ := json.Marshal(t)
		return append(b, q...)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}
