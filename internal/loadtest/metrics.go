package loadtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ServerSample is what one node's Prometheus endpoint says about its cost.
type ServerSample struct {
	RSS        float64 // process_resident_memory_bytes
	CPU        float64 // process_cpu_seconds_total
	Goroutines float64 // go_goroutines
	Conns      float64 // sessionhub_hub_connections
	// RevokeClose is the cumulative histogram sessionhub_hub_revoke_close_seconds
	// (revocation issued_at → close frame leaving the node): upper bound →
	// count. It splits the client-seen revoke → close into the issuing
	// request's share and the hubs' share.
	RevokeClose map[float64]float64
	// Broadcast is the cumulative histogram sessionhub_hub_broadcast_seconds
	// (a channel message's arrival at the node → the end of its pass over
	// the subscribers): the hubs' share of fanout's publish → deliver.
	Broadcast map[float64]float64
}

// Scraper reads the metrics endpoints of the nodes.
type Scraper struct {
	URLs   []string // base URLs of the metrics listeners, e.g. http://127.0.0.1:9090
	Client *http.Client
}

// GC asks every node to collect garbage and return memory to the OS
// (/debug/gc on the metrics port), so RSS reflects live memory.
func (s *Scraper) GC(ctx context.Context) error {
	for _, u := range s.URLs {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u+"/debug/gc", nil)
		resp, err := s.Client.Do(req)
		if err != nil {
			return fmt.Errorf("force GC on %s: %w", u, err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("force GC on %s: status %d", u, resp.StatusCode)
		}
	}
	return nil
}

// Sample scrapes every node and returns their samples in URL order.
func (s *Scraper) Sample(ctx context.Context) ([]ServerSample, error) {
	out := make([]ServerSample, len(s.URLs))
	for i, u := range s.URLs {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u+"/metrics", nil)
		resp, err := s.Client.Do(req)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("scrape %s: %w", u, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("scrape %s: %w", u, err)
		}
		out[i] = parseSample(string(body))
	}
	return out, nil
}

// Sum adds the samples of every node.
func Sum(ss []ServerSample) ServerSample {
	var t ServerSample
	for _, s := range ss {
		t.RSS += s.RSS
		t.CPU += s.CPU
		t.Goroutines += s.Goroutines
		t.Conns += s.Conns
		for le, n := range s.RevokeClose {
			if t.RevokeClose == nil {
				t.RevokeClose = map[float64]float64{}
			}
			t.RevokeClose[le] += n
		}
		for le, n := range s.Broadcast {
			if t.Broadcast == nil {
				t.Broadcast = map[float64]float64{}
			}
			t.Broadcast[le] += n
		}
	}
	return t
}

// HistQuantile estimates the q-quantile of the observations between two
// cumulative histograms (before, after) as the upper bound of the bucket
// that holds it, the precision Prometheus's buckets allow. ok is false when
// nothing was observed.
func HistQuantile(before, after map[float64]float64, q float64) (upper float64, ok bool) {
	les := make([]float64, 0, len(after))
	for le := range after {
		les = append(les, le)
	}
	slices.Sort(les)
	if len(les) == 0 {
		return 0, false
	}
	total := after[les[len(les)-1]] - before[les[len(les)-1]]
	if total <= 0 {
		return 0, false
	}
	for _, le := range les {
		if after[le]-before[le] >= q*total {
			return le, true
		}
	}
	return les[len(les)-1], true
}

// parseSample reads the four unlabelled series it needs from the text
// exposition format.
func parseSample(text string) ServerSample {
	var s ServerSample
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		if le, ok := strings.CutPrefix(name, `sessionhub_hub_revoke_close_seconds_bucket{le="`); ok {
			bound, err := strconv.ParseFloat(strings.TrimSuffix(le, `"}`), 64)
			n, err2 := strconv.ParseFloat(strings.Fields(val)[0], 64)
			if err == nil && err2 == nil {
				if s.RevokeClose == nil {
					s.RevokeClose = map[float64]float64{}
				}
				s.RevokeClose[bound] = n
			}
			continue
		}
		if le, ok := strings.CutPrefix(name, `sessionhub_hub_broadcast_seconds_bucket{le="`); ok {
			bound, err := strconv.ParseFloat(strings.TrimSuffix(le, `"}`), 64)
			n, err2 := strconv.ParseFloat(strings.Fields(val)[0], 64)
			if err == nil && err2 == nil {
				if s.Broadcast == nil {
					s.Broadcast = map[float64]float64{}
				}
				s.Broadcast[bound] = n
			}
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(val)[0], 64)
		if err != nil {
			continue
		}
		switch name {
		case "process_resident_memory_bytes":
			s.RSS = v
		case "process_cpu_seconds_total":
			s.CPU = v
		case "go_goroutines":
			s.Goroutines = v
		case "sessionhub_hub_connections":
			s.Conns = v
		}
	}
	return s
}
