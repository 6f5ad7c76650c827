// Command wasm is the browser build of tsconnect (GOOS=js GOARCH=wasm): a node of the overlay
// plus an SSH client, exposed to its Web Worker as one global, globalThis.__tsconnect.
//
// Only bridge_js.go touches syscall/js; it converts JS values to the plain Go API in
// ipn.go and ssh.go, which the host tests exercise. Only engine.go imports the node package.
//
// Build: GOOS=js GOARCH=wasm go build -trimpath -ldflags="-s -w" -o tsconnect.wasm ./wasm
package main
