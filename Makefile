# ocm-agent: see README.md. `make run` starts the agent, `make test` runs every test.
GO        ?= go
BIN       ?= bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/ocm-agent/ocm-agent/agent.Version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME  ?= 10s

.PHONY: all build run test unit lint fuzz bench demo clean packages check-packages

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ocm-agent ./cmd/ocm-agent
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ocm-peer ./internal/ocmtest/cmd/ocm-peer

# Runs the agent in the foreground with the embedded defaults
# (127.0.0.1:9200, state in $XDG_STATE_HOME/ocm-agent). Extra flags: make run ARGS='--mount ""'
run: build
	$(BIN)/ocm-agent serve $(ARGS)

lint:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

unit:
	$(GO) test -count=1 -timeout 30m ./...

# Short, bounded runs of every fuzz target.
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

test: lint unit fuzz

bench: build
	$(GO) run ./bench/receiver
	$(GO) run ./bench/mount

demo: build
	./scripts/demo.sh

# .deb and .rpm of ocm-agent and ocm-agent-tray in dist/ (nfpm v2.45.0 through the module proxy)
packages:
	VERSION=$(VERSION) ./scripts/packages.sh

# lintian, desktop/AppStream validation, scratch install of what `make packages` built
check-packages: packages
	./scripts/check-packages.sh dist

clean:
	rm -rf $(BIN) dist
