package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"tsconnect/agent"
	"tsconnect/internal/safetext"
)

// maxPingCount bounds -c.
const maxPingCount = 1000

func init() {
	var count int
	register(&command{
		name:  "ping",
		usage: "[-c N] HOST",
		short: "ping a peer with disco pings, through the relay and direct, and show the path",
		long: `Sends HOST (a peer name or overlay address) a round of disco pings each second, through
the relay and to each of its UDP endpoints, and prints one line a pong:

	pong from NAME (IP) via DERP(REGION) in 12ms
	pong from NAME (IP) via direct IP:PORT in 0.4ms

It stops at the first direct pong, after -c rounds otherwise, and exits 1 if no pong came.
Both agents need direct paths on (tsconnect up --udp-port).`,
		flags: func(fs *flag.FlagSet) { fs.IntVar(&count, "c", 10, "rounds of pings at most (1 to 1000)") },
		run: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return errors.New("ping needs exactly one HOST")
			}
			if count < 1 || count > maxPingCount {
				return fmt.Errorf("-c %d: from 1 to %d", count, maxPingCount)
			}
			pongs, direct, err := runPing(ctx, os.Stdout, args[0], count)
			if err != nil {
				return err
			}
			if pongs == 0 {
				return fmt.Errorf("no pong from %s in %d rounds", safetext.Bounded(args[0], 64), count)
			}
			if !direct {
				fmt.Fprintln(os.Stdout, "no direct path: traffic goes through the relay")
			}
			return nil
		},
	})
}

// runPing runs up to count rounds and prints each pong; it returns how many came and
// whether one was direct (which ends it).
func runPing(ctx context.Context, w io.Writer, host string, count int) (pongs int, direct bool, err error) {
	for i := range count {
		start := time.Now()
		res, err := pingRound(ctx, host)
		if err != nil {
			return pongs, false, err
		}
		for _, p := range res.Pongs {
			pongs++
			name, ip := safetext.Bounded(res.Name, 64), safetext.Bounded(res.IP, 64)
			if p.Direct != "" {
				fmt.Fprintf(w, "pong from %s (%s) via direct %s in %s\n", name, ip, safetext.Bounded(p.Direct, 64), fmtMillis(p.RTTMillis))
				return pongs, true, nil
			}
			region := safetext.Bounded(p.RegionCode, 32)
			if region == "" {
				region = fmt.Sprint(p.Region)
			}
			fmt.Fprintf(w, "pong from %s (%s) via DERP(%s) in %s\n", name, ip, region, fmtMillis(p.RTTMillis))
		}
		if i < count-1 {
			select {
			case <-ctx.Done():
				return pongs, false, ctx.Err()
			case <-time.After(time.Second - time.Since(start)):
			}
		}
	}
	return pongs, false, nil
}

func pingRound(ctx context.Context, host string) (agent.PingResult, error) {
	var res agent.PingResult
	resp, err := localAPIPost(ctx, "/localapi/v1/ping?host="+url.QueryEscape(host), struct{}{})
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&res)
	return res, err
}

// fmtMillis prints a round-trip time: 0.4ms, 12ms.
func fmtMillis(ms float64) string {
	if ms < 10 {
		return fmt.Sprintf("%.1fms", ms)
	}
	return fmt.Sprintf("%.0fms", ms)
}
