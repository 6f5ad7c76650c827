#!/usr/bin/env bash
# Prints the performance figures of the budgets in docs/architecture.md: relay packets/s, engine and
# end-to-end bulk MiB/s (native and wasm), resume after relay outages, an agent's reconnect to control,
# click-to-prompt in Chromium, terminal echo/bulk/responsiveness/memory in Chromium, file transfer
# of 1 GiB each way in Chromium, wasm size.
set -euo pipefail
cd "$(dirname "$0")/.."
WASM_EXEC="$(go env GOROOT)/lib/wasm/go_js_wasm_exec"
step() { printf '\n=== %s\n' "$*"; }

step "DERP relay, in-process (1 KiB packets)"
go test -run '^$' -bench 'BenchmarkRelay' -benchtime 2s ./derpws/ | grep -E '^Benchmark'

step "engine: TCP through two WireGuard engines over an in-memory relay (native)"
go test -run '^$' -bench . -benchtime 3x ./engine/ | grep -E '^Benchmark'

step "native node -> relay -> agent over SSH, 32 MiB (median of 5)"
go test -run '^$' -bench BenchmarkNativeBulk -benchtime 1x -count 5 ./e2e/ | grep -E '^Benchmark' \
  | awk '{print; for(i=1;i<=NF;i++) if($i=="MB/s") v[n++]=$(i-1)} END {asort(v); printf "median: %.1f MB/s\n", v[int((n+1)/2)]}'

step "wasm node (under node) -> relay -> agent over SSH, 32 MiB each way (5 runs)"
E2E_WASM_RUNS=5 go test -count=1 -v -run TestWasmBulk ./e2e/ | grep -E 'wasm node via relay' \
  | tee /dev/stderr | awk '{for(i=1;i<=NF;i++){if($i=="upload")u[n]=$(i+1); if($i=="download")d[n]=$(i+1)}; n++} END {asort(u); asort(d); printf "median: upload %s MiB/s, download %s MiB/s\n", u[int((n+1)/2)], d[int((n+1)/2)]}' 2>&1

step "open SSH session (native) resumes after relay outages of 1, 4, 10, 30 s: standalone and embedded relay (goal < 2 s)"
go test -run '^$' -bench BenchmarkOutageResume -benchtime 1x ./e2e/ | grep -E '^Benchmark|FAIL'

step "direct paths between network namespaces behind NATs: SSH bulk and echo direct vs relayed, time to direct, fallback, heal"
go test -run '^$' -bench BenchmarkNATPaths -benchtime 3x ./e2e/ | grep -E '^Benchmark|FAIL'

step "home relay down for good: agent homed in another region (peer's map), open session resumed, new login (two standalone relays)"
go test -run '^$' -bench BenchmarkRegionFailover -benchtime 1x ./e2e/ | grep -E '^Benchmark|FAIL'

step "control replica SIGKILLed (two replicas on PostgreSQL): agent and client reconnect to the other, open SSH session resumes, policy edit through the survivor cuts it (goals: 2 s, 1 s)"
go test -run '^$' -bench BenchmarkReplicaFailover -benchtime 1x ./e2e/ | grep -E '^Benchmark|FAIL'

step "control under the floods of issue 12 (logins over Noise, console passwords, SSO starts, SSH checks): RSS (bound 384 MiB), answers, normal nodes' latency"
go test -run '^$' -bench BenchmarkControlUnderFloods -benchtime 1x -v ./e2e/ | grep -E 'flood_bench_test|^Benchmark|FAIL'

step "agent current again after control comes back (1, 4, 10 s down; budget < 2 s)"
go test -run '^$' -bench BenchmarkControlReconnect -benchtime 1x ./e2e/ | grep -E '^Benchmark|FAIL'

step "open SSH session in Chromium resumes after relay outages of 1, 4, 10, 30 s: standalone and embedded relay (goal < 2 s)"
node e2e/browser/outage-bench.mjs | grep -E 'resume after'

step "browser: click to prompt (Chromium, loopback)"
node e2e/browser/bench.mjs

step "browser: terminal speed beside a plain WebSocket<->PTY terminal and xterm.js alone (Chromium, loopback)"
node e2e/browser/termbench.mjs

step "VNC in the console (noVNC over ipn.dial, Chromium, loopback): update latency, frame rate, input latency"
node e2e/browser/vncbench.mjs
step "browser: file transfer, 1 GiB each way streamed, sha256 checked: MB/s and the tab's memory (Chromium, loopback)"
node e2e/browser/filesbench.mjs

step "wasm size"
cat npm/dist/size-report.json

step "control at scale: 1,000 simulated nodes on real map streams, dense and sparse policy (E2E_SCALE_NODES=10000 for 10,000; E2E_SCALE_STORE=postgres on PostgreSQL)"
E2E_SCALE_NODES="${E2E_SCALE_NODES:-1000}" E2E_SCALE_STORE="${E2E_SCALE_STORE:-sqlite}" go test -timeout 60m -run '^$' -bench BenchmarkScale -benchtime 1x -v ./e2e/ | grep -E 'scale_bench_test|^Benchmark|FAIL'
