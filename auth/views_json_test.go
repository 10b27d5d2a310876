package auth

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAccountJSONMatchesEncodingJSON: the hand-written GET /session body
// is byte for byte what encoding/json writes, for plain values and for
// strings and times that need escaping or odd formatting, and it fails
// exactly where encoding/json fails (a year outside [0, 9999], a zone
// offset of 24 hours or more).
func TestAccountJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	paris := time.FixedZone("CET", 3600)
	strs := []string{"", "plain", `quote"back\slash`, "<script>&amp;</script>", "héllo wörld", "line\nbreak\ttab\x00nul\x1f\r\b\f",
		"\u2028\u2029", "bad utf8 \xff\xfe", "cut \xe2\x82", "emoji 😀", "del\x7f", "\ufffd\ufeff", "a>b&c<d", "\x80"}
	times := []time.Time{{}, time.Date(2026, 11, 25, 16, 57, 8, 458455237, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 120000000, paris),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(0, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(2026, 6, 1, 0, 0, 0, 0, time.FixedZone("LMT", -(9*60+21))),          // seconds in the offset
		time.Date(2026, 6, 1, 0, 0, 0, 0, time.FixedZone("", 23*3600+59*60)),          // the widest accepted offset
		time.Date(2026, 6, 1, 0, 0, 0, 0, time.Now().Location()).Add(time.Nanosecond), // a monotonic-free local time
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 6, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600)), time.Date(2026, 6, 1, 0, 0, 0, 0, time.FixedZone("", -25*3600)),
		time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("", -3600)), // year 10000 in UTC, 9999 as written
	}
	refused := 0
	for i, s := range strs {
		for j, tm := range times {
			v := accountResponse{
				User: userView{ID: s, Email: strs[(i+1)%len(strs)], Name: strs[(i+2)%len(strs)], CreatedAt: tm},
				Session: sessionView{ID: "id-" + s, Kind: "browser", CreatedAt: times[(j+1)%len(times)],
					LastSeenAt: tm, ExpiresAt: times[(j+2)%len(times)], IP: strs[(i+3)%len(strs)],
					UserAgent: strs[(i+4)%len(strs)], Device: strs[(i+5)%len(strs)], Current: (i+j)%2 == 0},
				CSRFToken: strs[(i+6)%len(strs)],
			}
			if requireAccountJSON(t, &v) {
				refused++
			}
		}
	}
	require.NotZero(t, refused, "some of the times are ones encoding/json refuses")
}

// requireAccountJSON checks v's hand-written encoding against
// encoding/json's and reports whether encoding/json refused v.
func requireAccountJSON(t *testing.T, v *accountResponse) bool {
	t.Helper()
	var want bytes.Buffer
	wantErr := json.NewEncoder(&want).Encode(v)
	got, err := v.appendJSON(nil)
	if wantErr != nil {
		require.Error(t, err, "encoding/json refused %+v: %v", v, wantErr)
		return true
	}
	require.NoError(t, err)
	require.Equal(t, want.String(), string(got), "%+v", v)
	return false
}

// FuzzAccountJSON: any strings and times, the same bytes (or the same
// refusal) as encoding/json.
func FuzzAccountJSON(f *testing.F) {
	f.Add("plain", "<&>\u2028", "\xff", int64(1767225600), int64(0), 0)
	f.Add("", "\x00\x1f\x7f", "é", int64(253402300800), int64(1), 3600) // year 10000
	f.Add("a", "b", "c", int64(-62135596801), int64(999999999), -60)    // year 0
	f.Add("a", "b", "c", int64(1767225600), int64(5), 86400)
	f.Fuzz(func(t *testing.T, s1, s2, s3 string, sec, nsec int64, off int) {
		tm := time.Unix(sec, nsec%1e9).In(time.FixedZone("z", off%(48*3600)))
		v := accountResponse{
			User: userView{ID: s1, Email: s2, Name: s3, CreatedAt: tm},
			Session: sessionView{ID: s2, Kind: s3, CreatedAt: tm.UTC(), LastSeenAt: tm, ExpiresAt: tm.Add(time.Hour),
				IP: s1, UserAgent: s3, Device: s2, Current: off%2 == 0},
			CSRFToken: s1 + s2,
		}
		requireAccountJSON(t, &v)
	})
}

// TestWriteAccountRefusesUnencodable: a body encoding/json would refuse
// is not sent at all (no status, no partial body), so that GET /session
// answers an error instead of a 200 with a broken body.
func TestWriteAccountRefusesUnencodable(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	v := &accountResponse{User: userView{ID: "u", CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}
	require.Error(t, writeAccount(rec, http.StatusOK, v))
	require.Zero(t, rec.Body.Len())
	require.Empty(t, rec.Header().Get("Content-Type"))

	rec = httptest.NewRecorder()
	v.User.CreatedAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	require.NoError(t, writeAccount(rec, http.StatusOK, v))
	require.True(t, json.Valid(rec.Body.Bytes()), rec.Body.String())
}
