package hub

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRateLimitBucket: 100 messages at once pass and the 101st is refused;
// the bucket refills at 100 a second; a burst straddling a second boundary
// is still limited (a fixed window let 2×100 through in a few ms); a client
// that keeps going past refusals is a flood; a pause forgives strikes.
func TestRateLimitBucket(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 990_000_000, time.UTC) // 10 ms before a second boundary
	var r rateLimit
	for i := range ratePerSecond {
		ok, _ := r.allow(t0)
		require.True(t, ok, "message %d of the first burst", i+1)
	}
	ok, flood := r.allow(t0)
	require.False(t, ok)
	require.False(t, flood)

	// 20 ms later (past the boundary) two more tokens, not a fresh 100.
	t1 := t0.Add(20 * time.Millisecond)
	passed := 0
	for range 50 {
		if ok, _ := r.allow(t1); ok {
			passed++
		}
	}
	require.Equal(t, 2, passed)

	// 150 messages a second, sustained: refused ones pile up into a flood.
	var r2 rateLimit
	var flooded bool
	for i := 0; i < 10*150 && !flooded; i++ {
		_, flooded = r2.allow(t0.Add(time.Duration(i) * time.Second / 150))
	}
	require.True(t, flooded, "a sustained 150/s is a flood within 10 s")

	// 99 a second forever is never refused.
	var r3 rateLimit
	for i := range 5 * 99 {
		ok, _ := r3.allow(t0.Add(time.Duration(i) * time.Second / 99))
		require.True(t, ok, "message %d at 99/s", i)
	}

	// A pause that refills the bucket forgives earlier strikes.
	var r4 rateLimit
	for range ratePerSecond + floodStrikes {
		r4.allow(t0)
	}
	_, flood = r4.allow(t0.Add(2 * time.Second))
	require.False(t, flood)
	require.Zero(t, r4.strikes)
}
