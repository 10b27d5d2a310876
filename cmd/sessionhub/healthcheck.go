package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheckTimeout bounds the probe below Docker's default 30 s interval.
const healthcheckTimeout = 3 * time.Second

// healthcheckCmd runs `sessionhub healthcheck`: GET /healthz on the local
// server, exit 0 on 200. It exists because the distroless image has no
// curl for the Dockerfile's HEALTHCHECK.
func healthcheckCmd(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("url", "", "URL to probe (default: http://127.0.0.1:<port of SESSIONHUB_ADDR or PORT>/healthz)")
	if err := fs.Parse(args); err != nil {
		return &usageError{err: err, quiet: true}
	}
	u := *target
	if u == "" {
		u = "http://" + localAddr(getenv) + "/healthz"
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return &usageError{err: fmt.Errorf("bad --url: %w", err)}
	}
	// No keep-alive: the probe is one request from a process about to exit.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d", u, resp.StatusCode)
	}
	return nil
}

// localAddr is the loopback host:port of the server configured by the
// environment, as serve would resolve SESSIONHUB_ADDR and PORT.
func localAddr(getenv func(string) string) string {
	port := "8080"
	if addr := getenv("SESSIONHUB_ADDR"); addr != "" {
		if _, p, err := net.SplitHostPort(addr); err == nil {
			port = p
		}
	} else if p := getenv("PORT"); p != "" {
		port = p
	}
	return net.JoinHostPort("127.0.0.1", port)
}
