# syntax=docker/dockerfile:1
#
# sessionhub: a static binary on distroless, running as a non-root user.
#
#   docker build -t sessionhub .
#   docker run -p 8080:8080 sessionhub                       # in-memory mode
#   docker run -p 8080:8080 -e REDIS_URL=… -e DATABASE_URL=… \
#     -e SESSIONHUB_KEYS_FILE=/run/secrets/keys.json … sessionhub serve --migrate
#
# The build stage is the same command as `make build`, so a machine with no
# Docker engine checks it with `make build` (see README, "Container image").

FROM golang:1.26 AS build
WORKDIR /src
# Modules first: this layer and the cache mounts survive source edits.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/sessionhub ./cmd/sessionhub

# distroless/static: CA certificates, tzdata and /etc/passwd with the
# nonroot user (65532), no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sessionhub /sessionhub
USER 65532:65532
# Inside a container the metrics listener must bind every interface to be
# scraped; publish 9090 only on the private network, never to the internet.
# (SESSIONHUB_ADDR keeps its :8080 default so that PORT still works.)
ENV SESSIONHUB_METRICS_ADDR=:9090
EXPOSE 8080 9090
# No curl in distroless: the binary probes its own /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/sessionhub", "healthcheck"]
ENTRYPOINT ["/sessionhub"]
CMD ["serve"]
