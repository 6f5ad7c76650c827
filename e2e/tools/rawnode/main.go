// Command rawnode registers a node with control over the control protocol with whatever
// Hostinfo it is told (a hostile OS string, say) and follows its map stream, for tests.
//
// Usage:
//
//	TSCONNECT_AUTH_KEY=KEY rawnode --control URL --hostname NAME [--os TEXT] [--ssh]
//
// It prints JSON lines on stdout: {"event":"registered","id":…,"name":…} once the node
// exists, {"event":"map","self":NAME,"peers":[NAMES]} on every map, and
// {"event":"ended","error":TEXT,"code":CODE} when control ends the stream (an expired or
// deleted node, say), after which it exits with status 3. SIGINT or SIGTERM ends it quietly.
// The node has no WireGuard, no relay connection and no SSH server: it exists for control
// and the console only.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"tsconnect/controlws"
	"tsconnect/key"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("rawnode: ")
	code, err := run()
	if err != nil {
		log.Print(err)
	}
	os.Exit(code)
}

// event is one line of output.
type event struct {
	Event string   `json:"event"`
	ID    int64    `json:"id,omitempty"`
	Name  string   `json:"name,omitempty"`
	Self  string   `json:"self,omitempty"`
	Peers []string `json:"peers,omitempty"`
	Error string   `json:"error,omitempty"`
	Code  string   `json:"code,omitempty"`
}

func run() (int, error) {
	controlURL := flag.String("control", "", "control server URL (http://127.0.0.1:PORT)")
	hostname := flag.String("hostname", "", "Hostinfo hostname to report")
	osName := flag.String("os", "linux", "Hostinfo OS to report (any text)")
	ssh := flag.Bool("ssh", false, "claim to run the SSH server")
	flag.Parse()
	authKey := os.Getenv("TSCONNECT_AUTH_KEY")
	if *controlURL == "" || authKey == "" {
		return 2, errors.New("--control URL and the TSCONNECT_AUTH_KEY environment variable are required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	enc := json.NewEncoder(os.Stdout)
	emit := func(e event) {
		if err := enc.Encode(e); err != nil {
			log.Printf("writing output: %v", err)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cc, err := controlws.Dial(dctx, controlws.DialOptions{ServerURL: *controlURL, MachineKey: key.NewPrivate()})
	if err != nil {
		return 1, err
	}
	defer cc.Close()
	hi := controlws.Hostinfo{Hostname: *hostname, OS: *osName, SSH: *ssh}
	nodeKey := key.NewPrivate().Public()
	reg, err := cc.Register(dctx, controlws.RegisterRequest{AuthKey: authKey, NodeKey: nodeKey, Hostinfo: hi})
	if err != nil {
		return 1, fmt.Errorf("registering: %w", err)
	}
	emit(event{Event: "registered", ID: reg.Node.ID, Name: reg.Node.Name})
	err = cc.WatchMaps(ctx, controlws.MapRequest{NodeKey: nodeKey, Hostinfo: hi}, func(nm *controlws.NetworkMap) {
		peers := make([]string, 0, len(nm.Peers))
		for _, p := range nm.Peers {
			peers = append(peers, p.Name)
		}
		sort.Strings(peers)
		emit(event{Event: "map", Self: nm.Self.Name, Peers: peers})
	})
	if ctx.Err() != nil {
		return 0, nil
	}
	e := event{Event: "ended", Error: fmt.Sprint(err)}
	var ce *controlws.Error
	if errors.As(err, &ce) {
		e.Code = ce.Code
	}
	emit(e)
	return 3, nil
}
