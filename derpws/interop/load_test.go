package interop

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	"tsconnect/derpws/derpload"
)

var loadFlag = flag.Bool("interop.load", false, "run TestLoadStockVsOurs: the same load through the stock relay and ours")

// TestLoadStockVsOurs drives the same load through the stock derper process and our relay
// (in-process, so it shares the CPU with the clients; the stock one runs in its own process).
// It runs only with -interop.load:
//
//	cd derpws/interop && go test -run TestLoadStockVsOurs -interop.load -v
func TestLoadStockVsOurs(t *testing.T) {
	if !*loadFlag {
		t.Skip("runs with -interop.load")
	}
	relays := []struct{ name, url string }{{"stock", stockRelay(t)}, {"ours", ourRelay(t)}}
	for _, pairs := range []int{1, 10, 100} {
		for _, size := range []int{1024, 1400} {
			for _, r := range relays {
				res, err := derpload.Run(context.Background(), derpload.Options{URL: r.url, Pairs: pairs, Size: size, Duration: 2 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				fmt.Printf("%-5s %3d pairs %4d B: %s\n", r.name, pairs, size, res)
			}
		}
	}
}
