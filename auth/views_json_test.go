package auth

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAccountJSONMatchesEncodingJSON: the hand-written GET /session body
// is byte for byte what encoding/json writes, for plain values and for
// strings and times that need escaping or odd formatting.
func TestAccountJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	paris := time.FixedZone("CET", 3600)
	strs := []string{"", "plain", `quote"back\slash`, "<script>&amp;</script>", "héllo wörld", "line\nbreak\ttab\x00nul\x1f",
		"\u2028\u2029", "bad utf8 \xff\xfe", "emoji 😀", "del\x7f"}
	times := []time.Time{{}, time.Date(2026, 11, 25, 16, 57, 8, 458455237, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 120000000, paris),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	for i, s := range strs {
		for j, tm := range times {
			v := accountResponse{
				User: userView{ID: s, Email: strs[(i+1)%len(strs)], Name: strs[(i+2)%len(strs)], CreatedAt: tm},
				Session: sessionView{ID: "id-" + s, Kind: "browser", CreatedAt: times[(j+1)%len(times)],
					LastSeenAt: tm, ExpiresAt: times[(j+2)%len(times)], IP: strs[(i+3)%len(strs)],
					UserAgent: strs[(i+4)%len(strs)], Device: strs[(i+5)%len(strs)], Current: (i+j)%2 == 0},
				CSRFToken: strs[(i+6)%len(strs)],
			}
			var want bytes.Buffer
			err := json.NewEncoder(&want).Encode(v)
			if err != nil {
				// encoding/json refuses a year past 9999; so does the
				// hand-written path (its fallback writes nothing usable).
				continue
			}
			require.Equal(t, want.String(), string(v.appendJSON(nil)), "strings %d, times %d", i, j)
		}
	}
}
