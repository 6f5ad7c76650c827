//go:build !js

package main

import (
	"fmt"
	"os"
)

// main explains that this command only runs in a browser; the package builds on the host
// so its plain Go parts are tested there.
func main() {
	fmt.Fprintln(os.Stderr, `tsconnect wasm runs in a browser Worker; build it with:
  GOOS=js GOARCH=wasm go build -trimpath -ldflags="-s -w" -o tsconnect.wasm ./wasm`)
	os.Exit(2)
}
