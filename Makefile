# tsconnect build. `make demo` starts the demo; `make test` runs every test.
GO        ?= go
BIN       := bin/tsconnect
WASM_EXEC := $(shell $(GO) env GOROOT)/lib/wasm/go_js_wasm_exec

.PHONY: all build web deps demo test test-go test-wasm test-browser bench deb clean

all: build

# The front end (wasm + npm package + web pages) is embedded into the binary, so it builds first.
build: web
	$(GO) build -o $(BIN) ./cmd/tsconnect

web: node_modules
	npm run build

node_modules: package-lock.json
	npm ci --no-audit --no-fund
	@touch node_modules

# deps installs what the tests need from Debian (chromium, openssh-client) when missing.
deps:
	bash scripts/deps.sh

demo: build
	./$(BIN) demo $(DEMO_FLAGS)

test: deps build
	bash scripts/test.sh

bench: build
	bash scripts/bench.sh

# deb builds the Debian package into dist/ (deploy/: units, flags, maintainer scripts).
deb: web
	bash scripts/deb.sh

clean:
	rm -rf bin dist web/dist/assets npm/dist
