package auth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// GET /session is the hottest authenticated route: its body is encoded by
// hand, byte for byte what encoding/json writes for accountResponse (a
// test holds the two equal), without reflection.

var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeAccount is writeJSON for an accountResponse. When v cannot be
// encoded (a time encoding/json refuses) it writes nothing and returns the
// error, so that the caller answers an error instead of a 200 whose body
// is empty or cut short.
func writeAccount(w http.ResponseWriter, status int, v *accountResponse) error {
	bp := jsonBufs.Get().(*[]byte)
	b, err := v.appendJSON((*bp)[:0])
	if err != nil {
		*bp = b[:0]
		jsonBufs.Put(bp)
		return fmt.Errorf("auth: encode account: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	*bp = b
	jsonBufs.Put(bp)
	return nil
}

// appendJSON appends v as json.NewEncoder(w).Encode(v) writes it,
// trailing newline included, and fails where Encode fails (a time
// time.Time.MarshalJSON refuses).
func (v *accountResponse) appendJSON(b []byte) ([]byte, error) {
	u, s := &v.User, &v.Session
	for _, t := range [...]time.Time{u.CreatedAt, s.CreatedAt, s.LastSeenAt, s.ExpiresAt} {
		if !plainJSONTime(t) {
			if _, err := t.MarshalJSON(); err != nil {
				return b, err
			}
		}
	}
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
	return append(b, "}\n"...), nil
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

// plainJSONTime reports whether time.Time.MarshalJSON surely writes t as
// AppendFormat(RFC3339Nano) does: a four-digit year and a zone offset
// under 24 hours (it refuses the others).
func plainJSONTime(t time.Time) bool {
	_, off := t.Zone()
	y := t.Year()
	return y >= 0 && y <= 9999 && off > -24*3600 && off < 24*3600
}

// appendJSONTime appends t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds). appendJSON has checked that MarshalJSON accepts t; a time
// outside plainJSONTime goes through MarshalJSON itself.
func appendJSONTime(b []byte, t time.Time) []byte {
	if !plainJSONTime(t) {
		q, _ := t.MarshalJSON()
		return append(b, q...)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}
