package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
)

// maxPublishBody is API.md's request body limit.
const maxPublishBody = 64 << 10

// HandlePublish handles POST /api/publish {channel, data} for workers: a
// bearer JWT of a live session with a pub: grant matching the channel gets
// 202 once Redis has taken the message for every node. Refusals come in
// this order: 401 (no token, a bad one, or its session ended), then the
// body (415, 413, 400), then 403 forbidden without the grant.
func (h *Hub) HandlePublish(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return
	}
	token, bearer := bearerToken(r)
	if !bearer || token == "" {
		writeError(w, http.StatusUnauthorized, "unauthenticated", "a bearer token is required")
		return
	}
	id, err := h.deps.Verifier.Verify(r.Context(), token)
	if err != nil || id.SessionID == "" {
		writeError(w, http.StatusUnauthorized, "invalid_token", "invalid or expired token")
		return
	}
	// A dead session is 401 before anything else is judged, as on every
	// route (API.md: no valid session → 401 first).
	switch h.alive(r.Context(), id.SessionID) {
	case errUnavailable:
		writeError(w, http.StatusServiceUnavailable, "unavailable", "session store unavailable")
		return
	case errDead:
		writeError(w, http.StatusUnauthorized, "invalid_token", "the session has ended")
		return
	}
	var body publishBody
	if status, code, msg := decodePublish(w, r, &body); status != 0 {
		writeError(w, status, code, msg)
		return
	}
	if body.Channel == nil || !validChannel(*body.Channel) || len(body.Data) == 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "body must be {channel, data} with a valid channel")
		return
	}
	if !grants(id.Scopes, "pub:", *body.Channel) {
		writeError(w, http.StatusForbidden, "forbidden", "no pub grant for this channel")
		return
	}
	if err := h.publish(r.Context(), *body.Channel, body.Data, fromOf(id)); err != nil {
		h.log.Warn("hub: publish failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the message could not be published")
		return
	}
	h.m.msgIn.Inc()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"status":"accepted"}` + "\n"))
}

// publishBody is the body of POST /api/publish.
type publishBody struct {
	Channel *string         `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// decodePublish reads the body as every JSON route of the server does
// (README): application/json only (415), at most 64 KiB (413), one JSON
// object with no unknown field and nothing after it (400). It returns
// status 0 when dst was filled.
func decodePublish(w http.ResponseWriter, r *http.Request, dst *publishBody) (status int, code, msg string) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return http.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: application/json"
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPublishBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return http.StatusRequestEntityTooLarge, "too_large", "body over 64 KiB"
		}
		return http.StatusBadRequest, "bad_request", "could not read the request body"
	}
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return http.StatusBadRequest, "bad_request", "body must be {channel, data}"
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return http.StatusBadRequest, "bad_request", "body must be {channel, data}"
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return http.StatusBadRequest, "bad_request", "trailing data after the JSON object"
	}
	return 0, "", ""
}
