//go:build !js

package controlws_test

import (
	"context"
	"fmt"
	"log"

	"tsconnect/controlws"
	"tsconnect/key"
)

// A node connects with its machine key, registers its node key with an auth key, and follows its map.
func ExampleDial() {
	serverURL, stop := controlws.StartExampleServer() // a loopback control server, for the example
	defer stop()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := controlws.Dial(ctx, controlws.DialOptions{
		ServerURL:  serverURL, // the server key is fetched from serverURL + controlws.KeyPath
		MachineKey: key.NewPrivate(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	nodeKey := key.NewPrivate() // the WireGuard and DERP identity
	hi := controlws.Hostinfo{Hostname: "laptop", OS: "linux"}
	reg, err := c.Register(ctx, controlws.RegisterRequest{AuthKey: "tskey-test-good", NodeKey: nodeKey.Public(), Hostinfo: hi})
	if err != nil {
		log.Fatal(err) // an *controlws.Error: errors.As it to read the Code
	}
	fmt.Println("registered as", reg.Node.Name, "owned by", reg.User.LoginName)

	err = c.WatchMaps(ctx, controlws.MapRequest{NodeKey: nodeKey.Public(), Hostinfo: hi}, func(nm *controlws.NetworkMap) {
		fmt.Printf("map: self %s, %d peers, DERP region %s\n", nm.Self.Name, len(nm.Peers), nm.DERPMap.Regions[1].RegionCode)
		cancel() // a real node keeps watching; the example stops after the first map
	})
	fmt.Println("WatchMaps ended:", err)
	// Output:
	// registered as laptop owned by alice@example.com
	// map: self laptop, 0 peers, DERP region lo
	// WatchMaps ended: context canceled
}
