package loadtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
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
	}
	return t
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
