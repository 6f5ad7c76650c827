#!/usr/bin/env bash
# Runs every test: vet and staticcheck (host and js/wasm), Go unit and integration tests, wasm tests under
# node, and the browser tests in Chromium. `make test` builds first and calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
WASM_EXEC="$(go env GOROOT)/lib/wasm/go_js_wasm_exec"
# The module's own packages built into the browser's wasm, and those of them with tests for js/wasm.
js() { GOOS=js GOARCH=wasm "$@"; }
WASM_PKGS=$(js go list -deps -f '{{with .Module}}{{if eq .Path "tsconnect"}}{{$.ImportPath}}{{end}}{{end}}' ./wasm)
WASM_TEST_PKGS=$(js go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' $WASM_PKGS)
[ -n "$WASM_PKGS" ] && [ -n "$WASM_TEST_PKGS" ] || { echo "go list found no wasm packages"; exit 1; }

# staticcheck, pinned; installed once per Go version into a cache directory.
STATICCHECK_VERSION=v0.8.2
TOOLS="${XDG_CACHE_HOME:-$HOME/.cache}/tsconnect/tools/staticcheck-$STATICCHECK_VERSION-$(go env GOVERSION)"
STATICCHECK="$TOOLS/staticcheck"

step() { printf '\n=== %s\n' "$*"; }

step "gofmt"
bad=$(gofmt -l $(git ls-files '*.go') 2>/dev/null || true)
[ -z "$bad" ] || { echo "gofmt would change: $bad"; exit 1; }

step "go mod tidy -diff (the module and its test-only modules: a stale go.mod fails here, not after the tests)"
for m in . derpws/interop internal/testop e2e/tools/rtcspike; do
  (cd "$m" && go mod tidy -diff) || { echo "go.mod of $m is not tidy: run (cd $m && go mod tidy)"; exit 1; }
done

step "go vet (host)"
go vet ./...
step "go vet (js/wasm: $(echo $WASM_PKGS | wc -w) packages of ./wasm)"
js go vet $WASM_PKGS

step "staticcheck $STATICCHECK_VERSION (host and js/wasm, results merged: unused means unused in both)"
if [ ! -x "$STATICCHECK" ]; then
  mkdir -p "$TOOLS"
  (cd "$TOOLS" && GOBIN="$TOOLS" GOFLAGS= go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION")
fi
sc="$(mktemp -d)"
trap 'rm -rf "$sc"' EXIT
"$STATICCHECK" -f binary ./... >"$sc/host"
js "$STATICCHECK" -f binary $WASM_PKGS >"$sc/js"
"$STATICCHECK" -merge "$sc/host" "$sc/js"

# PostgreSQL's tests (internal/testpg) fail instead of skipping when it is missing: deps.sh installs it.
export TSCONNECT_REQUIRE_POSTGRES=1

step "go test (host: unit + integration)"
go test -count=1 -timeout=20m ./...

step "go test -race (control, its protocol, console and e2e: the concurrent parts; 2.5–4 min)"
go test -race -count=1 -timeout=15m ./control/... ./controlws/... ./console/... ./e2e/

step "DERP interop with the stock relay (a separate, test-only module)"
(cd derpws/interop && go vet ./... && "$STATICCHECK" ./... && go test -count=1 -timeout=10m ./...)

step "the test OpenID Provider (internal/testop: a separate, test-only module on ory/fosite)"
(cd internal/testop && go vet ./... && "$STATICCHECK" ./... && go test -count=1 -timeout=5m ./...)

step "the WebRTC spike (e2e/tools/rtcspike: a separate, test-only module on pion/webrtc)"
(cd e2e/tools/rtcspike && go vet ./... && "$STATICCHECK" ./... && go test -count=1 -timeout=5m ./...)

step "go test (js/wasm under node)"
NODE_OPTIONS=--experimental-websocket js go test -count=1 -timeout=10m -exec="$WASM_EXEC" $WASM_TEST_PKGS

step "typescript: type-check (sources, build and test scripts) and prettier --check"
npm run --silent typecheck
npm run --silent format:check

step "npm package: node tests"
npm test --silent

step "browser tests (Chromium)"
node --test --test-concurrency=1 e2e/browser/
