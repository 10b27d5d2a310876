package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"
)

// maxBody is API.md's request body cap.
const maxBody = 64 << 10

// decodeJSON reads one JSON object from r's body into dst. It refuses a
// Content-Type other than application/json (415: the type is wrong, not the
// content), bodies over 64 KiB (413), malformed JSON, unknown fields,
// trailing data and anything but an object (400).
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return errMediaType
	}
	body := http.MaxBytesReader(w, r.Body, maxBody)
	return decodeBody(body, dst)
}

// decodeBody is the transport-free half of decodeJSON (fuzzed directly).
func decodeBody(body io.Reader, dst any) error {
	data, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge
		}
		return errBadRequest("could not read the request body")
	}
	if len(data) > maxBody {
		return errTooLarge
	}
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return errBadRequest("the body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &ute):
			return errBadRequest("field " + strconv.Quote(ute.Field) + " has the wrong type")
		default:
			return errBadRequest("malformed JSON or unknown field")
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errBadRequest("trailing data after the JSON object")
	}
	return nil
}

// writeJSON sends v with status. Auth responses carry identities, CSRF
// tokens or tokens, so none of them may be cached anywhere.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// writeError answers err through httpError; unmapped errors are logged
// with the route and answered with a bare 500.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg, known := httpError(err)
	if !known {
		s.log.Error("auth: unhandled error", slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Any("err", err))
	} else if status == http.StatusServiceUnavailable {
		s.log.Warn("auth: store unavailable", slog.String("path", r.URL.Path), slog.Any("err", err))
		// An outage or a saturated hash pool is short-lived: tell clients
		// when to come back rather than letting them hammer a sick node.
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, errorBody{Error: code, Message: msg})
}

// writeRateLimited answers 429 with Retry-After in whole seconds.
func (s *Server) writeRateLimited(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
	s.writeError(w, r, ErrRateLimited)
}
