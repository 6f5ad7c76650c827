#!/usr/bin/env bash
# Runs every test: vet (host and js/wasm), Go unit and integration tests, wasm tests under
# node, and the browser tests in Chromium. `make test` builds first and calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
WASM_EXEC="$(go env GOROOT)/lib/wasm/go_js_wasm_exec"
# Packages that are built into the browser's wasm.
WASM_PKGS="./key ./controlws ./derpws ./derpbind ./tunstack ./engine ./node ./sshclient ./policy/... ./filter ./wsconn ./wasm"

step() { printf '\n=== %s\n' "$*"; }

step "gofmt"
bad=$(gofmt -l $(git ls-files '*.go') 2>/dev/null || true)
[ -z "$bad" ] || { echo "gofmt would change: $bad"; exit 1; }

step "go vet (host)"
go vet ./...
step "go vet (js/wasm)"
GOOS=js GOARCH=wasm go vet $WASM_PKGS

step "go test (host: unit + integration)"
go test -count=1 -timeout=20m ./...

step "go test -race (control, its protocol, console and e2e: the concurrent parts; 2.5–4 min)"
go test -race -count=1 -timeout=15m ./control/... ./controlws/... ./console/... ./e2e/

step "DERP interop with the stock relay (a separate, test-only module)"
(cd derpws/interop && go vet ./... && go test -count=1 -timeout=10m ./...)

step "go test (js/wasm under node)"
NODE_OPTIONS=--experimental-websocket GOOS=js GOARCH=wasm \
  go test -count=1 -timeout=10m -exec="$WASM_EXEC" ./key ./engine ./sshclient ./policy/... ./filter ./wsconn

step "typescript: type-check (sources, build and test scripts) and prettier --check"
npm run --silent typecheck
npm run --silent format:check

step "npm package: node tests"
npm test --silent

step "browser tests (Chromium)"
node --test --test-concurrency=1 e2e/browser/
