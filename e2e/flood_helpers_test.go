package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tsconnect/controlws"
	"tsconnect/key"
)

// benchNode is a node registered with an auth key over its own control connection; when it
// watches, the latest map it got is kept.
type benchNode struct {
	c      *controlws.Client
	node   controlws.Node
	cancel context.CancelFunc
	last   atomic.Pointer[controlws.NetworkMap]
}

// joinNode registers a node named hostname with authKey; watch starts its map stream.
func joinNode(b *testing.B, url, authKey, hostname string, watch bool) *benchNode {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := controlws.Dial(ctx, controlws.DialOptions{ServerURL: url, MachineKey: key.NewPrivate()})
	if err != nil {
		b.Fatal(err)
	}
	nk := key.NewPrivate()
	r, err := c.Register(ctx, controlws.RegisterRequest{AuthKey: authKey, NodeKey: nk.Public(),
		Hostinfo: controlws.Hostinfo{Hostname: hostname, OS: "linux"}})
	if err != nil {
		c.Close()
		b.Fatalf("register %s: %v", hostname, err)
	}
	wctx, wcancel := context.WithCancel(context.Background())
	n := &benchNode{c: c, node: r.Node, cancel: wcancel}
	if watch {
		go c.WatchMaps(wctx, controlws.MapRequest{NodeKey: nk.Public(), Hostinfo: controlws.Hostinfo{Hostname: hostname, OS: "linux"}},
			func(nm *controlws.NetworkMap) { n.last.Store(nm) })
		deadline := time.Now().Add(20 * time.Second)
		for n.last.Load() == nil {
			if time.Now().After(deadline) {
				b.Fatalf("%s got no map within 20 s", hostname)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return n
}

func (n *benchNode) close() { n.cancel(); n.c.Close() }

// timeJoin registers a new node named hostname and returns how long until n's map shows it
// (30 s when it never does).
func (n *benchNode) timeJoin(b *testing.B, url, authKey, hostname string) time.Duration {
	t0 := time.Now()
	p := joinNode(b, url, authKey, hostname, false)
	defer p.close()
	for time.Since(t0) < 30*time.Second {
		for _, peer := range n.last.Load().Peers {
			if peer.ID == p.node.ID {
				return time.Since(t0)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 30 * time.Second
}

// counter counts answers by kind.
type counter struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counter) add(kind string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[kind]++
	c.mu.Unlock()
}

func (c *counter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprint(c.m)
}

// floodInteractiveLogins opens conns anonymous Noise connections from 127.0.0.1, each
// asking for perConn interactive logins (one connection in ten sends a 4 MiB hostname
// first), and keeps them open until stop; it returns the answers by kind.
func floodInteractiveLogins(url string, conns, perConn int, stop *atomic.Bool) string {
	var answers counter
	var mu sync.Mutex
	var open []*controlws.Conn
	var wg sync.WaitGroup
	work := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				c, err := controlws.DialConn(ctx, controlws.DialOptions{ServerURL: url, MachineKey: key.NewPrivate()})
				cancel()
				if err != nil {
					answers.add("dial failed")
					continue
				}
				mu.Lock()
				open = append(open, c)
				mu.Unlock()
				for j := range perConn {
					hostname := "flood"
					if i%10 == 0 && j == 0 {
						hostname = strings.Repeat("x", 4<<20)
					}
					err := c.Send(controlws.TypeRegister, uint64(j+1), controlws.RegisterRequest{NodeKey: key.NewPrivate().Public(),
						Interactive: true, Hostinfo: controlws.Hostinfo{Hostname: hostname, OS: "linux"}})
					if err != nil {
						answers.add("send failed")
						break
					}
					answers.add(readAnswer(c))
				}
			}
		}()
	}
	for i := range conns {
		work <- i
	}
	close(work)
	wg.Wait()
	for !stop.Load() {
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range open {
		c.Close()
	}
	return answers.String()
}

// readAnswer reads one envelope from c (20 s at most) and names it: its type, or the error code.
func readAnswer(c *controlws.Conn) string {
	got := make(chan string, 1)
	go func() {
		env, err := c.ReadEnvelope()
		switch {
		case err != nil:
			got <- "connection ended"
		case env.Err() != nil:
			var ce *controlws.Error
			if errors.As(env.Err(), &ce) {
				got <- ce.Code
			} else {
				got <- "error"
			}
		default:
			got <- env.Type
		}
	}()
	select {
	case s := <-got:
		return s
	case <-time.After(20 * time.Second):
		return "no answer in 20 s"
	}
}

// floodOIDCStart sends total anonymous GET /auth/oidc/start from workers goroutines, not
// following redirects, and returns the answers by status.
func floodOIDCStart(url string, total, workers int) string {
	client := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var answers counter
	var left atomic.Int64
	left.Store(int64(total))
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				resp, err := client.Get(url + "/auth/oidc/start?returnTo=/admin/")
				if err != nil {
					answers.add("failed")
					continue
				}
				resp.Body.Close()
				answers.add(fmt.Sprint(resp.StatusCode))
			}
		}()
	}
	wg.Wait()
	return answers.String()
}

// floodChecks sends total SSH checks over dest's connection (as its agent would), for logins
// from random srcs, workers at a time; pending ones are held until stop, then cancelled.
// It returns the answers by kind.
func floodChecks(dest *benchNode, srcs []*benchNode, total, workers int, stop *atomic.Bool) string {
	var answers counter
	ctx, cancel := context.WithCancel(context.Background())
	var held sync.WaitGroup
	sem := make(chan struct{}, workers)
	for range total {
		sem <- struct{}{}
		src := srcs[rand.IntN(len(srcs))].node
		req := controlws.SSHCheckRequest{SrcNode: src.ID, SrcAddr: src.Addresses[0].Addr(), User: "root", LocalUser: "root"}
		answered := make(chan struct{})
		var once sync.Once
		held.Add(1)
		go func() {
			defer held.Done()
			v, err := dest.c.SSHCheck(ctx, req, func(controlws.SSHCheckVerdict) {
				answers.add("pending")
				once.Do(func() { close(answered) })
			})
			once.Do(func() {
				var ce *controlws.Error
				switch {
				case errors.As(err, &ce):
					answers.add(ce.Code)
				case err != nil:
					answers.add("failed")
				default:
					answers.add("verdict " + v.Verdict)
				}
				close(answered)
			})
		}()
		go func() {
			select {
			case <-answered:
			case <-time.After(20 * time.Second):
			}
			<-sem
		}()
	}
	for range workers {
		sem <- struct{}{}
	}
	for !stop.Load() {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	held.Wait()
	return answers.String()
}
