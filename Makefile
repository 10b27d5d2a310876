# Everyday commands. `make test` is the one CI runs (.ci/run).
.PHONY: test run build lint fmt fuzz clean

GO ?= go

# test: the whole suite with -race on real Redis and Postgres, started by
# scripts/test when they are not running. Extra flags: make test ARGS='-run X -v'.
test:
	scripts/test $(ARGS)

# run: the server on the embedded in-memory default.
run:
	$(GO) run ./cmd/sessionhub serve

# build: the static binary, built as the Dockerfile builds it.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/sessionhub ./cmd/sessionhub

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'run: make fmt'; exit 1; }
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
