//go:build !js

package controlws

import (
	"context"
	"encoding/json"
	"net"
	"testing"

	"tsconnect/key"
)

// BenchmarkHandshake measures one Noise IK handshake with its confirmation, both ends, over a pipe.
func BenchmarkHandshake(b *testing.B) {
	serverKey, machine := key.NewPrivate(), key.NewPrivate()
	for b.Loop() {
		a, z := net.Pipe()
		errc := make(chan error, 1)
		go func() { _, err := respond(context.Background(), z, serverKey, Version, supported); errc <- err }()
		if _, err := initiate(context.Background(), a, machine, serverKey.Public(), Version, supported); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		a.Close()
		z.Close()
	}
}

// BenchmarkFullMap measures sending a 1,200-peer full map (JSON encode, Noise, decode) between two Conns.
func BenchmarkFullMap(b *testing.B) {
	serverKey := key.NewPrivate()
	a, z := net.Pipe()
	defer a.Close()
	defer z.Close()
	srvc := make(chan *Conn, 1)
	go func() { c, _ := respond(context.Background(), z, serverKey, Version, supported); srvc <- c }()
	cli, err := initiate(context.Background(), a, key.NewPrivate(), serverKey.Public(), Version, supported)
	if err != nil {
		b.Fatal(err)
	}
	srv := <-srvc
	nm := &NetworkMap{}
	for i := range 1200 {
		nm.Peers = append(nm.Peers, testPeer(int64(i)))
	}
	size, _ := json.Marshal(nm)
	b.SetBytes(int64(len(size)))
	errc := make(chan error, 1)
	go func() {
		for {
			env, err := cli.ReadEnvelope()
			if err != nil {
				errc <- err
				return
			}
			var r MapResponse
			if err := env.DecodeBody(&r); err != nil {
				errc <- err
				return
			}
			errc <- nil
		}
	}()
	for b.Loop() {
		if err := srv.Send(TypeMapResponse, 1, &MapResponse{Full: nm}); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
}
