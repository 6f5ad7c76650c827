// Command wasmfiles is the browser's file-transfer wasm (tsconnect-files.wasm): SFTP (filexfer)
// over a channel the main wasm opens on a session's connection, loaded only for file transfer.
//
// The main wasm has no room for an SFTP client within its budget (docs/architecture.md
// "Budgets"); this one runs beside it in the same Worker and talks to it through JavaScript.
//
// Build: GOOS=js GOARCH=wasm go build -trimpath -ldflags="-s -w" -o tsconnect-files.wasm ./wasmfiles
package main
