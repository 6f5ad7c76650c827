// Package wsconn dials a WebSocket and returns it as a net.Conn: a byte stream over binary messages.
// Under GOOS=js, dial_js.go binds the browser's WebSocket (the one syscall/js binding besides wasm/bridge_js.go): coder/websocket's browser build costs 2.3 MB of net/http+TLS.
package wsconn
