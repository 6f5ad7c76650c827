//go:build !js

package derpws_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"tsconnect/derpws"
	"tsconnect/key"
)

// A relay mounted on an HTTP mux, admitting any key.
func ExampleNewServer() {
	relay := derpws.NewServer(key.NewPrivate(), nil)
	defer relay.Close()
	mux := http.NewServeMux()
	mux.Handle("/derp", relay)  // the upgrade and the WebSocket
	mux.Handle("/derp/", relay) // /derp/probe, /derp/latency-check
	hs := httptest.NewServer(mux)
	defer hs.Close()

	resp, err := http.Get(hs.URL + "/derp/probe")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status, resp.Header.Get("Access-Control-Allow-Origin"))
	// Output: 200 OK *
}

// Two nodes exchanging a packet through a relay.
func ExampleNewClient() {
	relay := derpws.NewServer(key.NewPrivate(), nil)
	mux := http.NewServeMux()
	mux.Handle("/derp", relay)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	defer relay.Close()

	alice := derpws.NewClient(key.NewPrivate(), hs.URL+"/derp", nil)
	defer alice.Close()
	bobKey := key.NewPrivate()
	bob := derpws.NewClient(bobKey, hs.URL+"/derp", &derpws.ClientOptions{
		UseWebSocket: true,
		OnConnect: func() {
			// Bob is reachable now; Send itself never waits for the network.
			alice.Send(bobKey.Public(), []byte("hello, bob"))
		},
	})
	defer bob.Close()

	src, pkt, err := bob.Recv()
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q from alice: %v\n", pkt, src == alice.PublicKey())
	// Output: "hello, bob" from alice: true
}
