package hub

import (
	"context"
	"encoding/json"
	"strings"
	"time"
)

// Error codes of the socket protocol (API.md).
const (
	codeBadRequest      = "bad_request"
	codeUnknownType     = "unknown_type"
	codeForbidden       = "forbidden"
	codeNotSubscribed   = "not_subscribed"
	codeTooManyChannels = "too_many_channels"
	codeRateLimited     = "rate_limited"
	// codeUnavailable is not in API.md's list: a publish Redis did not
	// take is refused rather than acknowledged and lost.
	codeUnavailable = "unavailable"
)

// Protocol limits, each with why.
const (
	maxChannels   = 128 // API.md; the implicit user channel is not counted
	maxChannelLen = 200 // room for a prefix and a UUID or two; bounds Redis channel names
	maxIDLen      = 128 // an id is echoed back, so it is bounded
	// subscribeWait bounds how long a subscribe waits for Redis to confirm
	// before it is acknowledged anyway (the subscription is kept and
	// becomes active when Redis is back).
	subscribeWait = 2 * time.Second
	publishWait   = 2 * time.Second // a publish Redis has not taken by then is refused
)

// inbound is a client message. Every field is raw so that a wrongly typed
// field is reported with the request's id rather than as bad JSON.
type inbound struct {
	Type    json.RawMessage `json:"type"`
	ID      json.RawMessage `json:"id"`
	Channel json.RawMessage `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// handle dispatches one client text message (valid UTF-8, ≤ 64 KiB).
func (c *conn) handle(msg []byte) {
	ok, flood := c.rl.allow(time.Now())
	if flood {
		c.closeWith(DisconnectFlood, 0)
		return
	}
	var in inbound
	if err := json.Unmarshal(msg, &in); err != nil {
		c.reply(errorFrame(nil, codeBadRequest, "message is not a JSON object"))
		return
	}
	id := readID(in.ID)
	if !ok {
		c.reply(errorFrame(id, codeRateLimited, "more than 100 messages per second"))
		return
	}
	typ, ok := jsonString(in.Type)
	if !ok {
		c.reply(errorFrame(id, codeBadRequest, "type must be a string"))
		return
	}
	switch typ {
	case "subscribe", "unsubscribe", "publish":
	default:
		c.reply(errorFrame(id, codeUnknownType, "unknown message type"))
		return
	}
	if id == nil {
		c.reply(errorFrame(nil, codeBadRequest, "id must be a string or a number"))
		return
	}
	ch, ok := jsonString(in.Channel)
	if !ok || !validChannel(ch) {
		c.reply(errorFrame(id, codeBadRequest, "channel must be a valid channel name"))
		return
	}
	switch typ {
	case "subscribe":
		c.subscribe(id, ch)
	case "unsubscribe":
		c.unsubscribe(id, ch)
	case "publish":
		if len(in.Data) == 0 {
			c.reply(errorFrame(id, codeBadRequest, "data is required"))
			return
		}
		c.publish(id, ch, in.Data)
	}
}

func (c *conn) reply(payload []byte) { c.enqueue(textFrame(payload)) }

func (c *conn) ownChannel() string { return "user:" + c.ident.UserID }

func (c *conn) subscribe(id []byte, ch string) {
	if ch == c.ownChannel() {
		c.reply(ackFrame(id))
		return
	}
	if _, dup := c.channels[ch]; dup {
		c.reply(ackFrame(id))
		return
	}
	if !grants(c.ident.Scopes, "sub:", ch) {
		c.reply(errorFrame(id, codeForbidden, "no sub grant for this channel"))
		return
	}
	if len(c.channels) >= maxChannels {
		c.reply(errorFrame(id, codeTooManyChannels, "at most 128 channels per socket"))
		return
	}
	if c.channels == nil {
		c.channels = make(map[string]struct{})
	}
	c.channels[ch] = struct{}{}
	ready := c.h.reg.join(c, ch)
	select {
	case <-ready:
	case <-time.After(subscribeWait):
		c.h.log.Warn("hub: subscription not confirmed in time", "channel", ch)
	}
	c.reply(ackFrame(id))
}

func (c *conn) unsubscribe(id []byte, ch string) {
	if ch == c.ownChannel() {
		c.reply(errorFrame(id, codeForbidden, "the user channel cannot be left"))
		return
	}
	if _, ok := c.channels[ch]; !ok {
		c.reply(errorFrame(id, codeNotSubscribed, "not subscribed to this channel"))
		return
	}
	delete(c.channels, ch)
	c.h.reg.leave(c, ch)
	c.reply(ackFrame(id))
}

func (c *conn) publish(id []byte, ch string, data json.RawMessage) {
	if !grants(c.ident.Scopes, "pub:", ch) {
		c.reply(errorFrame(id, codeForbidden, "no pub grant for this channel"))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishWait)
	defer cancel()
	if err := c.h.publish(ctx, ch, data, c.from); err != nil {
		c.reply(errorFrame(id, codeUnavailable, "the message could not be published"))
		return
	}
	c.reply(ackFrame(id))
}

// readID returns the id when it is a JSON string or number, else nil.
func readID(raw json.RawMessage) []byte {
	if len(raw) == 0 || len(raw) > maxIDLen {
		return nil
	}
	switch b := raw[0]; {
	case b == '"', b == '-', b >= '0' && b <= '9':
		return raw
	}
	return nil
}

// jsonString decodes raw when it is a JSON string.
func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// validChannel accepts 1..200 bytes of letters, digits and _-.:@=+/ (no
// '*', which only grants use, and nothing that needs escaping).
func validChannel(ch string) bool {
	if len(ch) == 0 || len(ch) > maxChannelLen {
		return false
	}
	for i := 0; i < len(ch); i++ {
		b := ch[i]
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		case strings.IndexByte("_-.:@=+/", b) >= 0:
		default:
			return false
		}
	}
	return true
}

// grants reports whether some scope "<kind><pattern>" matches ch; a pattern
// is exact or ends in one '*' (a prefix). A '*' anywhere else never matches.
func grants(scopes []string, kind, ch string) bool {
	for _, s := range scopes {
		p, ok := strings.CutPrefix(s, kind)
		if !ok || p == "" {
			continue
		}
		if prefix, wild := strings.CutSuffix(p, "*"); wild {
			if !strings.Contains(prefix, "*") && strings.HasPrefix(ch, prefix) {
				return true
			}
			continue
		}
		if p == ch {
			return true
		}
	}
	return false
}

func ackFrame(id []byte) []byte {
	b := make([]byte, 0, 24+len(id))
	b = append(b, `{"type":"ack","id":`...)
	b = append(b, id...)
	return append(b, '}')
}

func errorFrame(id []byte, code, message string) []byte {
	b := make([]byte, 0, 64+len(id)+len(message))
	b = append(b, `{"type":"error"`...)
	if id != nil {
		b = append(b, `,"id":`...)
		b = append(b, id...)
	}
	b = append(b, `,"error":`...)
	b = appendString(b, code)
	b = append(b, `,"message":`...)
	b = appendString(b, message)
	return append(b, '}')
}
