package main

import (
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDockerfile checks the image recipe against the binary, since no
// Docker engine runs where the tests do: the final stage is static and
// non-root, the ports are the defaults, the HEALTHCHECK calls a subcommand
// that exists, and the build command is `make build`'s.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../Dockerfile")
	require.NoError(t, err)
	// Join continuation lines and drop comments.
	text := regexp.MustCompile(`\\\n\s*`).ReplaceAllString(string(raw), " ")
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	final := 0
	for i, l := range lines {
		if strings.HasPrefix(l, "FROM ") {
			final = i
		}
	}
	require.Regexp(t, `^FROM golang:1\.\d+ AS build$`, lines[0])
	require.Regexp(t, `^FROM (gcr\.io/distroless/static\S*|scratch)$`, lines[final])
	stage := strings.Join(lines[final:], "\n")
	require.Contains(t, stage, "USER 65532:65532")
	require.Contains(t, stage, "EXPOSE 8080 9090")
	require.Contains(t, stage, `ENTRYPOINT ["/sessionhub"]`)
	require.Contains(t, stage, `CMD ["serve"]`)
	require.Regexp(t, `HEALTHCHECK .*CMD \["/sessionhub", "healthcheck"\]`, stage)
	require.Equal(t, 0, report(run(t.Context(), []string{"sessionhub", "healthcheck", "-h"}, envOf(nil), nil, io.Discard, io.Discard), io.Discard),
		"the HEALTHCHECK's subcommand exists")

	build := `CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/sessionhub ./cmd/sessionhub`
	require.Contains(t, string(raw), build)
	mk, err := os.ReadFile("../../Makefile")
	require.NoError(t, err)
	require.Contains(t, string(mk), `CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/sessionhub ./cmd/sessionhub`,
		"make build is the Dockerfile's build, so it checks it")
	require.Contains(t, string(raw), "--mount=type=cache,target=/go/pkg/mod")
}
