package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// HTTP measures authenticated GET /session (sliding included) and POST
// /session/token on node 0 with a pool of browser sessions and conns
// concurrent clients, each for dur.
func HTTP(ctx context.Context, o Options, sessions, conns int, dur time.Duration) (*Result, error) {
	res := &Result{Scenario: fmt.Sprintf("http (%d sessions, %d clients)", sessions, conns)}
	creds, err := o.Prov.Sessions(ctx, sessions, 1, "browser", nil)
	if err != nil {
		return nil, err
	}
	base := o.Targets[0]
	// The client must not be what is measured: it shares its core with
	// Redis. No compression (no gzip wrapper per response), no per-request
	// Client.Timeout (a timer and a context per request; each phase has a
	// deadline instead), and requests copied from one prepared per phase
	// with prebuilt headers (no URL parse, no header map per request).
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	csrf := make([]string, len(creds))
	for i, c := range creds {
		var body struct {
			CSRF string `json:"csrf_token"`
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/session", nil)
		req.Header.Set("Cookie", "__Host-sessionhub="+c.Token)
		resp, err := cl.Do(req)
		if err != nil {
			return nil, err
		}
		err = decodeJSON(resp, &body)
		if err != nil {
			return nil, fmt.Errorf("GET /session: %w", err)
		}
		csrf[i] = body.CSRF
	}
	sc := o.scraper()
	bare := &http.Client{Transport: tr}
	for _, phase := range []string{"GET /session", "POST /session/token"} {
		before, err := sc.Sample(ctx)
		if err != nil {
			return nil, err
		}
		pctx, cancel := context.WithTimeout(ctx, dur+10*time.Second)
		method, path := http.MethodGet, "/session"
		if phase != "GET /session" {
			method, path = http.MethodPost, "/session/token"
		}
		proto, err := http.NewRequestWithContext(pctx, method, base+path, nil)
		if err != nil {
			cancel()
			return nil, err
		}
		headers := make([]http.Header, len(creds))
		for i, c := range creds {
			h := http.Header{"Cookie": {"__Host-sessionhub=" + c.Token}}
			if method == http.MethodPost {
				h["X-Csrf-Token"] = []string{csrf[i]}
			}
			headers[i] = h
		}
		lat, codes := hammer(pctx, conns, dur, func(i int) *http.Request {
			req := new(http.Request)
			*req = *proto
			req.Header = headers[i%len(creds)] // only read by the transport
			return req
		}, bare)
		cancel()
		after, err := sc.Sample(ctx)
		if err != nil {
			return nil, err
		}
		okN := codes[200]
		res.add(phase+" 200 responses", round(float64(okN)/dur.Seconds(), 0), "/s")
		res.addLatency(phase, lat)
		res.add(phase+" status counts", fmt.Sprint(codes), "")
		if okN > 0 {
			res.add(phase+" server CPU per request", round((Sum(after).CPU-Sum(before).CPU)/float64(okN)*1e6, 1), "µs")
		}
		if n := codes[http.StatusTooManyRequests]; n > 0 {
			// POST /session/token allows 60 a minute per session (API.md):
			// past that the phase measures refusals, and the CPU per 200
			// carries their cost. Not a server fault; the pool is too small.
			res.add(phase+" refused 429 (per-session limit; use more --sessions)", n, "")
		}
	}
	return res, nil
}

func decodeJSON(resp *http.Response, out any) error {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

// hammer runs conns clients sending mk(i) requests back to back for dur and
// returns the latencies of 2xx answers and the count of each status.
func hammer(ctx context.Context, conns int, dur time.Duration, mk func(i int) *http.Request, cl *http.Client) (Durations, map[int]int) {
	var mu sync.Mutex
	var lat Durations
	codes := map[int]int{}
	end := time.Now().Add(dur)
	var wg sync.WaitGroup
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine Durations
			my := map[int]int{}
			for i := w; time.Now().Before(end) && ctx.Err() == nil; i += conns {
				t0 := time.Now()
				resp, err := cl.Do(mk(i))
				if err != nil {
					my[0]++
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				my[resp.StatusCode]++
				if resp.StatusCode/100 == 2 {
					mine = append(mine, time.Since(t0))
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			for k, v := range my {
				codes[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return lat, codes
}
