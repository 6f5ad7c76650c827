package derpws

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// Probing of regions.
const (
	probeTries   = 3
	probeTimeout = 5 * time.Second
)

// ProbeRegions measures the round trip to each region's first relay with GET /derp/probe,
// keeping the best of a few tries; regions that never answer are left out. get fetches a URL;
// nil means net/http natively (in the browser the caller must pass one built on fetch).
func ProbeRegions(ctx context.Context, dm *Map, get func(ctx context.Context, url string) ([]byte, error)) map[int]time.Duration {
	if get == nil {
		get = defaultHTTPGet
	}
	out := make(map[int]time.Duration)
	if dm == nil {
		return out
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, r := range dm.Regions {
		if r == nil || len(r.Nodes) == 0 {
			continue
		}
		url := NodeURL(r.Nodes[0]) + "/probe"
		wg.Add(1)
		go func() {
			defer wg.Done()
			best := time.Duration(-1)
			for range probeTries {
				pctx, cancel := context.WithTimeout(ctx, probeTimeout)
				start := time.Now()
				_, err := get(pctx, url)
				d := time.Since(start)
				cancel()
				if err != nil {
					continue
				}
				if best < 0 || d < best {
					best = d
				}
			}
			if best >= 0 {
				mu.Lock()
				out[id] = best
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// PickHome returns the region of dm with the lowest measured latency; without measurements
// it returns the lowest region ID that has relays. It returns 0 if dm has no relay.
func PickHome(dm *Map, latency map[int]time.Duration) int {
	if dm == nil {
		return 0
	}
	var ids []int
	for id, r := range dm.Regions {
		if r != nil && len(r.Nodes) > 0 {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return 0
	}
	slices.Sort(ids)
	best, found := ids[0], false
	for _, id := range ids {
		d, ok := latency[id]
		if ok && (!found || d < latency[best]) {
			best, found = id, true
		}
	}
	return best
}

var errNoHTTPGet = errors.New("derpws: probing needs an HTTP GET function in this build")
