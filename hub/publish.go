package hub

import (
	"encoding/json"
	"errors"
	"net/http"
)

// maxPublishBody is API.md's request body limit.
const maxPublishBody = 64 << 10

// HandlePublish handles POST /api/publish {channel, data} for workers: a
// bearer JWT with a pub: grant matching the channel gets 202 once Redis has
// taken the message for every node; no grant is 403 forbidden.
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
	id, err := h.deps.Verifier.Verify(token)
	if err != nil || id.SessionID == "" {
		writeError(w, http.StatusUnauthorized, "invalid_token", "invalid or expired token")
		return
	}
	var body struct {
		Channel *string         `json:"channel"`
		Data    json.RawMessage `json:"data"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPublishBody))
	if err := dec.Decode(&body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", "body over 64 KiB")
			return
		}
		writeError(w, http.StatusBadRequest, "bad_request", "body must be {channel, data}")
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
	switch h.alive(r.Context(), id.SessionID) {
	case errUnavailable:
		writeError(w, http.StatusServiceUnavailable, "unavailable", "session store unavailable")
		return
	case errDead:
		writeError(w, http.StatusUnauthorized, "invalid_token", "the session has ended")
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
